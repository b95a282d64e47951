-- wrk driver for a widget message round trip (and the floor view, which takes the same request).
--
-- wrk -t T -c C -d D -s bench/wrk/message.lua http://127.0.0.1:PORT -- \
--     SESSIONS_FILE PATH_TEMPLATE ORIGIN THREADS
--
-- SESSIONS_FILE: one "session_id visitor_token" per line, created by bench/run.py beforehand.
-- PATH_TEMPLATE: e.g. /api/widget/sessions/%s/messages/ (%s is the session id).
-- Each thread takes its own slice of the sessions and cycles through it, so no two threads ever
-- post to the same session and, with several sessions per connection, requests in flight almost
-- never wait on one another's row lock: a real site has many visitors, one message at a time each.
-- done() prints one BENCH_JSON line that run.py parses (latencies in microseconds).

local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

local sessions = {}
local cursor = 0
local path_template
local origin
local body = '{"text": "Hi, we are a team of 40 and would like a quote for the yearly plan."}'

function init(args)
  local file = args[1]
  path_template = args[2]
  origin = args[3]
  local nthreads = tonumber(args[4])
  local n = 0
  for line in io.lines(file) do
    if n % nthreads == id then
      local sid, token = line:match("^(%S+)%s+(%S+)$")
      table.insert(sessions, { id = sid, token = token })
    end
    n = n + 1
  end
  if #sessions == 0 then
    error("thread " .. id .. " got no sessions from " .. file)
  end
end

function request()
  cursor = cursor % #sessions + 1
  local s = sessions[cursor]
  return wrk.format("POST", string.format(path_template, s.id), {
    ["Content-Type"] = "application/json",
    ["Accept"] = "application/json",
    ["X-Visitor-Token"] = s.token,
    ["Origin"] = origin,
  }, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors_connect": %d, "errors_read": %d, "errors_write": %d, "errors_status": %d, ' ..
    '"errors_timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
