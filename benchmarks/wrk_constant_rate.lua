-- wrk script: single decisions at a constant rate (open loop, as wrk2 paces), for
-- benchmarks/service_load.py's paced phase. Run with one connection per thread
-- (wrk -tN -cN): each thread is then one connection that owns a fixed schedule of send
-- slots, BENCH_RATE / N per second, the N schedules interleaved, so the offered rate is
-- BENCH_RATE whatever the answers' latency.
--
-- delay() returns the milliseconds until this connection's next slot (0 when the slot
-- has passed: a connection that fell behind sends at once and catches up, it never
-- skips a slot). wrk's own latency (from the moment the request is written) is the
-- service time; this script also measures each answer from its scheduled slot
-- (wrk2's correction for coordinated omission): latency = answer time - min(slot, sent),
-- so a request the generator sent late, or could not send because its connection was
-- still waiting for the previous answer, counts from when it should have gone out.
-- Clock: CLOCK_MONOTONIC through LuaJIT's ffi; wrk's timers have 1 ms resolution, so a
-- send may go out up to ~1 ms off its slot (the lag is reported).
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } cx_bench_timespec;
int clock_gettime(int clock_id, cx_bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local timespec = ffi.new("cx_bench_timespec")
local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.tv_sec) * 1e6 + tonumber(timespec.tv_nsec) / 1e3
end

local customers = tonumber(os.getenv("BENCH_CUSTOMERS"))
local rate = tonumber(os.getenv("BENCH_RATE"))
local streams = tonumber(os.getenv("BENCH_STREAMS"))
local limit = tonumber(os.getenv("BENCH_REQUESTS_PER_THREAD") or "100000000")
local extra = os.getenv("BENCH_EXTRA_FIELDS") or ""  -- e.g. ',"record_contact":false'
local channels = {"web", "mobile_app", "call_centre", "branch", "atm", "email"}
local BUCKET_US = 10  -- histogram resolution
local counter = 1
local threads = {}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = os.getenv("BENCH_KEY")

function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  math.randomseed(os.time() * 1000 + id)
  interval = 1e6 * streams / rate  -- microseconds between this connection's slots
  start = now_us() + 50000 + (id - 1) * interval / streams  -- interleaved schedules
  slot_index = 0
  slot, sent_at = nil, nil
  sent, answered, late = 0, 0, 0
  lag_max = 0
  corrected, lags = {}, {}
end

function delay()
  slot = start + slot_index * interval
  slot_index = slot_index + 1
  local wait = (slot - now_us()) / 1000
  if wait < 0 then return 0 end
  return math.floor(wait)  -- wrk's timers take whole milliseconds
end

function request()
  sent = sent + 1
  if sent > limit then wrk.thread:stop() end
  sent_at = now_us()
  return wrk.format("POST", "/v1/decisions", nil, string.format(
    '{"customer_id":"%d","channel":"%s"%s}',
    math.random(1, customers), channels[math.random(1, #channels)], extra))
end

local function count(histogram, us)
  local bucket = math.floor(us / BUCKET_US)
  histogram[bucket] = (histogram[bucket] or 0) + 1
end

function response(status, headers, body)
  local now = now_us()
  answered = answered + 1
  local lag = sent_at - slot
  if lag > 1000 then late = late + 1 end
  if lag > lag_max then lag_max = lag end
  count(lags, lag > 0 and lag or 0)
  count(corrected, now - math.min(slot, sent_at))
end

local function percentile(histogram, total, share)
  local keys = {}
  for bucket in pairs(histogram) do keys[#keys + 1] = bucket end
  table.sort(keys)
  local wanted, seen = total * share / 100, 0
  for _, bucket in ipairs(keys) do
    seen = seen + histogram[bucket]
    if seen >= wanted then return (bucket + 1) * BUCKET_US end
  end
  return 0
end

function done(summary, latency, requests)
  local merged, lag_merged, total, late_total, lag_top, offered = {}, {}, 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    for bucket, n in pairs(thread:get("corrected")) do merged[bucket] = (merged[bucket] or 0) + n end
    for bucket, n in pairs(thread:get("lags")) do lag_merged[bucket] = (lag_merged[bucket] or 0) + n end
    total = total + thread:get("answered")
    late_total = late_total + thread:get("late")
    lag_top = math.max(lag_top, thread:get("lag_max"))
    offered = offered + thread:get("slot_index")
  end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"errors_connect":%d,"errors_read":%d,' ..
    '"errors_write":%d,"errors_status":%d,"errors_timeout":%d,"p50_us":%d,"p95_us":%d,' ..
    '"p99_us":%d,"max_us":%d,"mean_us":%.1f,"scheduled_p50_us":%d,"scheduled_p95_us":%d,' ..
    '"scheduled_p99_us":%d,"scheduled_p999_us":%d,"scheduled_answers":%d,"slots":%d,' ..
    '"sent_over_1ms_late":%d,"send_lag_p99_us":%d,"send_lag_max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.max, latency.mean, percentile(merged, total, 50), percentile(merged, total, 95),
    percentile(merged, total, 99), percentile(merged, total, 99.9), total, offered,
    late_total, percentile(lag_merged, total, 99), lag_top))
end
