-- One wrk script for every benchmark scenario; configured through environment variables:
--   WRK_PATH     request path, e.g. /read or /incr (default /)
--   COOKIE       a whole "name=value" cookie sent on every request (hot mode), optional
--   COOKIE_FILE  file with one "name=value" per line; each request picks one at random
--                (many mode), optional; takes precedence over COOKIE
-- wrk itself never stores cookies, so a request without COOKIE/COOKIE_FILE has no cookie
-- (for /incr that is a new session per request).
-- done() prints one machine-readable line that bench/run.sh parses.

local path = os.getenv("WRK_PATH") or "/"
local cookie = os.getenv("COOKIE")
local cookie_file = os.getenv("COOKIE_FILE")
local cookies = {}
local n = 0

if cookie_file and #cookie_file > 0 then
  for line in io.lines(cookie_file) do
    if #line > 0 then
      n = n + 1
      cookies[n] = line
    end
  end
  if n == 0 then
    error("no cookies in " .. cookie_file)
  end
end

-- The fixed request (no cookie file) is built on first use: wrk.format() adds the Host header
-- only once wrk has set up its target, which is not yet the case while this file is loaded.
local fixed = nil

function init(args)
  -- each wrk thread has its own Lua state: seed it differently
  math.randomseed(os.time() + (tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000))
end

function request()
  if n == 0 then
    if not fixed then
      local headers = {}
      if cookie and #cookie > 0 then
        headers["Cookie"] = cookie
      end
      fixed = wrk.format("GET", path, headers)
    end
    return fixed
  end
  return wrk.format("GET", path, { ["Cookie"] = cookies[math.random(n)] })
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d status_errors=%d connect_errors=%d read_errors=%d write_errors=%d timeouts=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
