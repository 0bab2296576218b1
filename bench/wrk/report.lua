-- Appended to every row's script: one JSON line with the counts, the latency percentiles, and the
-- latency at every tenth of a percent (`quantiles_us`), from which runs side by side are pooled.
done = function(summary, latency, requests)
  local errors = summary.errors
  local quantiles = {}
  for step = 1, 1000 do quantiles[step] = string.format("%d", latency:percentile(step / 10)) end
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "socket_errors": %d, "status_errors": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "quantiles_us": [%s]}\n',
    summary.requests, summary.duration / 1e6, errors.connect + errors.read + errors.write + errors.timeout,
    errors.status, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    table.concat(quantiles, ", ")))
end
