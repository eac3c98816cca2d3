-- p99 of the total time (Ta) per backend per 5 minutes, merged exactly from the `windows` table.
-- Run from the folder that holds the spool:  duckdb < samples/sql/windows_p99.sql
--
-- Window rows are partial aggregates (one per node, worker and window): never average their
-- quantiles. Merge their histograms instead: unnest each row's `total_hist` buckets
-- (`ms` = the bucket's lowest value, `n` = its count), add the counts per bucket, walk the
-- cumulative counts to the nearest rank ceil(0.99 * count), and cap by the exact maximum.
-- `weir query --by backend --every 5m --timer total` gives the same numbers.
WITH rows AS (
    SELECT backend,
           time_bucket(INTERVAL 5 MINUTE, window_start) AS period,
           total_count, total_max, total_hist
    FROM read_parquet('weir-spool/windows/**/*.parquet', hive_partitioning = true)
),
maxima AS (
    SELECT backend, period, sum(total_count) AS count, max(total_max) AS max_ms
    FROM rows GROUP BY ALL
),
buckets AS (
    SELECT backend, period, b.ms AS ms, sum(b.n) AS n
    FROM (SELECT backend, period, unnest(total_hist) AS b FROM rows)
    GROUP BY ALL
),
cumulative AS (
    SELECT backend, period, ms,
           sum(n) OVER (PARTITION BY backend, period ORDER BY ms) AS cum
    FROM buckets
)
SELECT m.backend, m.period, m.count,
       least(min(c.ms) FILTER (WHERE c.cum >= greatest(1, ceil(0.99::DOUBLE * m.count))), m.max_ms)
           AS p99_total_ms
FROM maxima m JOIN cumulative c USING (backend, period)
WHERE m.count > 0
GROUP BY m.backend, m.period, m.count, m.max_ms
ORDER BY m.backend, m.period;
