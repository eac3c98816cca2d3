//! Black-box tests of the weir binary; the tests live in `tests/`.
