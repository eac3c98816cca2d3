//! Settings of glibc's allocator for each kind of command, made at start with `mallopt` before
//! any thread is spawned; an environment variable glibc reads (`MALLOC_ARENA_MAX`,
//! `MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_`) wins over each. Elsewhere than glibc
//! they do nothing.

/// For `serve`, which runs for months and must keep to its memory.
///
/// glibc's allocator gives threads that allocate at once arenas of their own, up to 8 per
/// core, and memory freed in an arena stays there for its thread: a server whose receivers,
/// workers and HTTP tasks pass buffers between threads held about 150 MB more resident than
/// its live heap (`BENCHMARKS.md`). Two arenas, as `MALLOC_ARENA_MAX=2` would set.
///
/// Blocks of 1 MiB or more (a flush's Arrow columns, a row group being encoded, a batch of
/// closed window rows) are mapped and unmapped one by one, as `MALLOC_MMAP_THRESHOLD_=1048576`
/// would set: glibc otherwise raises that threshold to 32 MiB as such blocks are freed, and
/// serves them from the heap, where the holes they leave keep the peak resident (about 40 MB
/// more at 10,000 window series, `BENCHMARKS.md`).
pub fn for_server() {
    set("MALLOC_ARENA_MAX", M_ARENA_MAX, 2);
    set("MALLOC_MMAP_THRESHOLD_", M_MMAP_THRESHOLD, 1 << 20);
}

/// For the commands that run once over files (`import`, `query`, `report`, `plot`).
///
/// They allocate and free decode and encode buffers of megabytes over and over. glibc maps the
/// blocks past its threshold (at most 32 MiB) afresh each time, and gives the free top of its
/// heap back to the system past twice that, so that the next buffer is faulted in page by page
/// again: a tenth of a `weir query`'s time went to page faults. Blocks under 256 MiB come from
/// the heap, and up to 512 MiB of free heap is kept: memory is given back when the command
/// ends, moments later. `weir query` on 18 M requests' windows: 0.23-0.24 s against
/// 0.24-0.29 s (`BENCHMARKS.md`).
pub fn for_batch() {
    set("MALLOC_MMAP_THRESHOLD_", M_MMAP_THRESHOLD, 256 << 20);
    set("MALLOC_TRIM_THRESHOLD_", M_TRIM_THRESHOLD, 512 << 20);
}

/// Gives the free memory of glibc's heaps back to the system (`malloc_trim(0)`: the free top of
/// each heap, and the free pages within them), so that what a transient freed (a row group
/// encoded, a window closed) is not kept resident in holes the next one may not fit. `serve`
/// calls it once a second.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn trim() {
    // SAFETY: malloc_trim only releases memory the allocator holds free; no precondition.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Elsewhere than glibc, nothing to do.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim() {}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
use libc::{M_ARENA_MAX, M_MMAP_THRESHOLD, M_TRIM_THRESHOLD};

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
const M_ARENA_MAX: i32 = 0;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
const M_MMAP_THRESHOLD: i32 = 0;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
const M_TRIM_THRESHOLD: i32 = 0;

/// Sets `param` to `value` unless the environment variable `env` (glibc's own name for it)
/// is set.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn set(env: &str, param: libc::c_int, value: libc::c_int) {
    if std::env::var_os(env).is_some() {
        return;
    }
    // SAFETY: mallopt sets a parameter of the C allocator, before this process starts any
    // thread of its own; it has no memory-safety preconditions.
    unsafe {
        libc::mallopt(param, value);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set(_env: &str, _param: i32, _value: i32) {}
