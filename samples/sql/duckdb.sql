-- Timers per backend from a weir spool, with DuckDB.
-- Run from the folder that holds the spool:  duckdb < samples/sql/duckdb.sql
-- (the path is relative: point it at any spool, or at s3://bucket/prefix/requests/**/*.parquet).

-- p50 / p99 of the total time (Ta) per backend. HAProxy's -1 timers are NULL and not counted.
SELECT backend,
       count(*)                                 AS requests,
       count(*) FILTER (WHERE status >= 500)    AS errors_5xx,
       quantile_cont(total_ms, 0.50)            AS p50_total_ms,
       quantile_cont(total_ms, 0.99)            AS p99_total_ms,
       quantile_cont(response_ms, 0.99)         AS p99_response_ms
FROM read_parquet('weir-spool/requests/**/*.parquet', hive_partitioning = true)
WHERE total_ms IS NOT NULL
GROUP BY backend
ORDER BY p99_total_ms DESC;

-- Requests and p99 per hour: `date` and `hour` come from the folder names (partition pruning
-- makes a WHERE on them skip whole folders).
SELECT date, hour,
       count(*)                      AS requests,
       quantile_cont(total_ms, 0.99) AS p99_total_ms
FROM read_parquet('weir-spool/requests/**/*.parquet', hive_partitioning = true)
GROUP BY date, hour
ORDER BY date, hour;
