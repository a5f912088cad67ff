-- Shared by every wrk script here: numbers each thread, and prints one machine-readable line
--   WRK_JSON {"requests":...,"rps":...,"lat_p50_ms":...,"lat_p99_ms":...,"status_errors":...}
-- at the end of the run (wrk's own text report is printed too). Latencies are in milliseconds;
-- "status_errors" is what wrk prints as "Non-2xx or 3xx responses".
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  local function ms(us) return us / 1000 end
  io.write(string.format(
    'WRK_JSON {"threads":%d,"requests":%d,"seconds":%.3f,"rps":%.1f,"bytes":%d,'
      .. '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d,'
      .. '"lat_mean_ms":%.3f,"lat_p50_ms":%.3f,"lat_p90_ms":%.3f,"lat_p99_ms":%.3f,"lat_p999_ms":%.3f,"lat_max_ms":%.3f}\n',
    #threads, summary.requests, secs, summary.requests / secs, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    ms(latency.mean), ms(latency:percentile(50)), ms(latency:percentile(90)),
    ms(latency:percentile(99)), ms(latency:percentile(99.9)), ms(latency.max)))
end
