# p50 / p99 of the total time (Ta) per backend from a weir spool, with arrow and dplyr.
# Usage: Rscript samples/r/open_spool.R [SPOOL]     (default: ./weir-spool)
# Needs: install.packages(c("arrow", "dplyr"))

suppressPackageStartupMessages({
  library(arrow)
  library(dplyr)
})

args <- commandArgs(trailingOnly = TRUE)
spool <- if (length(args) >= 1) args[[1]] else "weir-spool"

# The `date=` / `hour=` folders are detected as Hive partitions; `ts` reads as POSIXct in UTC.
requests <- open_dataset(file.path(spool, "requests"), format = "parquet")

# Filter and project in Arrow (only two columns leave the files), then exact quantiles in R.
# HAProxy's -1 timers are stored as NULL, so they drop out here.
by_backend <- requests |>
  filter(!is.na(total_ms)) |>
  select(backend, total_ms, status) |>
  collect() |>
  group_by(backend) |>
  summarise(
    requests = n(),
    errors_5xx = sum(status >= 500, na.rm = TRUE),
    p50_total_ms = quantile(total_ms, 0.50, names = FALSE),
    p99_total_ms = quantile(total_ms, 0.99, names = FALSE),
    .groups = "drop"
  ) |>
  arrange(desc(p99_total_ms))

print(by_backend, n = Inf)
