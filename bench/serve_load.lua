-- wrk script for bench/serve_load.sh: POSTs the request body in $BODY (MinerU's text-recognition
-- request with a real text line) and reports the latency percentiles and failures at the end.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open(os.getenv("BODY"), "rb"))
wrk.body = f:read("*a")
f:close()

done = function(summary, latency, requests)
  io.write(string.format("requests %d in %.1f s: %.2f requests/s; errors: connect %d, read %d, write %d, status %d, timeout %d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6), summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout))
  for _, p in ipairs({50, 90, 99}) do
    io.write(string.format("latency p%d %.1f ms\n", p, latency:percentile(p) / 1000))
  end
end
