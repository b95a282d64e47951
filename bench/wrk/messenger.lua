-- wrk driver for the Messenger webhook intake (bench/messenger_intake.py).
--
-- wrk -t T -c C -d D -s bench/wrk/messenger.lua http://127.0.0.1:PORT -- BODIES_FILE THREADS
--
-- BODIES_FILE: one "signature<TAB>json body" per line, signed beforehand with the app secret
-- (Lua has no HMAC), each with its own message ids so every request really inserts. Each
-- thread takes its own slice. done() prints one BENCH_JSON line (latencies in microseconds).

local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

local bodies = {}
local cursor = 0

function init(args)
  local nthreads = tonumber(args[2])
  local n = 0
  for line in io.lines(args[1]) do
    if n % nthreads == id then
      local sig, body = line:match("^(%S+)\t(.*)$")
      table.insert(bodies, { sig = sig, body = body })
    end
    n = n + 1
  end
  wrapped = 0
end

function request()
  cursor = cursor + 1
  if cursor > #bodies then
    cursor = 1
    wrapped = wrapped + 1
  end
  local b = bodies[cursor]
  return wrk.format("POST", "/channels/messenger/webhook/", {
    ["Content-Type"] = "application/json",
    ["X-Hub-Signature-256"] = b.sig,
  }, b.body)
end

function done(summary, latency, requests)
  local wraps = 0
  for _, t in ipairs(threads) do
    wraps = wraps + (t:get("wrapped") or 0)
  end
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "errors_connect": %d, "errors_read": %d, '
      .. '"errors_write": %d, "errors_timeout": %d, "errors_status": %d, "p50_us": %d, '
      .. '"p99_us": %d, "wrapped": %d}\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, summary.errors.status,
    latency:percentile(50), latency:percentile(99), wraps))
end
