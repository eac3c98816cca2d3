# p99 of the total time (Ta) per backend per 5 minutes, merged exactly from the `windows` table,
# with arrow, dplyr and tidyr. `weir query --by backend --every 5m --timer total` gives the same
# numbers, and so does samples/sql/windows_p99.sql.
# Usage: Rscript samples/r/windows_p99.R [SPOOL]     (default: ./weir-spool)
# Needs: install.packages(c("arrow", "dplyr", "tidyr"))
#
# Window rows are partial aggregates (one per node, worker and window): never average their
# quantiles. Each row's `total_hist` lists its histogram's non-empty buckets (`ms`, the bucket's
# lowest value, and `n`, its count): add the counts per bucket, walk the cumulative counts to
# the nearest rank ceiling(0.99 * count), and cap by the exact maximum.

suppressPackageStartupMessages({
  library(arrow)
  library(dplyr)
  library(tidyr)
})

args <- commandArgs(trailingOnly = TRUE)
spool <- if (length(args) >= 1) args[[1]] else "weir-spool"

windows <- open_dataset(file.path(spool, "windows"), format = "parquet") |>
  select(window_start, backend, total_count, total_max, total_hist) |>
  collect() |>
  mutate(period = as.POSIXct(floor(as.numeric(window_start) / 300) * 300,
                             origin = "1970-01-01", tz = "UTC"))

maxima <- windows |>
  group_by(backend, period) |>
  summarise(count = sum(total_count), max_ms = max(total_max), .groups = "drop")

p99 <- windows |>
  select(backend, period, total_hist) |>
  unnest(total_hist) |>
  group_by(backend, period, ms) |>
  summarise(n = sum(n), .groups = "drop") |>
  arrange(backend, period, ms) |>
  group_by(backend, period) |>
  mutate(cum = cumsum(n)) |>
  inner_join(maxima, by = c("backend", "period")) |>
  filter(count > 0, cum >= pmax(1, ceiling(0.99 * count))) |>
  summarise(count = first(count), p99_total_ms = min(first(ms), first(max_ms)), .groups = "drop") |>
  arrange(backend, period)

print(as.data.frame(p99), row.names = FALSE)
