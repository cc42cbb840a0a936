-- wrk script for bench/otp_verify.py: each thread takes every n-th line of the request file
-- ("<path> <bearer token> <code>") so every token is verified once; counts answers by status.
local threads = {}
local counter = 1

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local file, nthreads = args[1], tonumber(args[2])
  reqs = {}
  local i = 0
  for line in io.lines(file) do
    if i % nthreads == id - 1 then
      local path, bearer, code = line:match("(%S+) (%S+) (%S+)")
      table.insert(reqs, wrk.format("POST", path,
        {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. bearer},
        '{"code":"' .. code .. '"}'))
    end
    i = i + 1
  end
  idx = 0
  ok, rejected, other, exhausted = 0, 0, 0, 0
end

function request()
  idx = idx + 1
  if idx > #reqs then
    exhausted = exhausted + 1
    return reqs[#reqs]
  end
  return reqs[idx]
end

function response(status, headers, body)
  if status == 200 then ok = ok + 1 elseif status == 400 then rejected = rejected + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local t = {ok = 0, rejected = 0, other = 0, exhausted = 0}
  for _, thread in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + thread:get(k) end
  end
  io.write(string.format(
    'WRKJSON {"requests": %d, "accepted": %d, "rejected": %d, "other": %d, "ran_out": %d, "seconds": %.2f, ' ..
    '"per_second": %.1f, "p50_ms": %.2f, "p90_ms": %.2f, "p99_ms": %.2f, "max_ms": %.2f, "errors": %d}\n',
    summary.requests, t.ok, t.rejected, t.other, t.exhausted, summary.duration / 1e6,
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
