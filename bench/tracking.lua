-- The tracking burst's load generator for wrk (bench/tracking.py runs it):
--   wrk -t T -c C -d Ds -s bench/tracking.lua http://127.0.0.1:PORT -- REQUESTS_FILE T
-- REQUESTS_FILE has one request a line, "GET /e/o/….gif", "GET /e/c/…/" or "POST /e/u/…/";
-- the lines go to the T threads in blocks of ten (each thread gets the whole 6:3:1 mix), and
-- each thread's connections take its lines in order, round and round. Every answer is counted by
-- what it is: a 200 GIF is an open, a 302 to an absolute URL a click, a 200 page with the
-- unsubscribe confirmation (its "Resubscribe" form names the token) an unsubscribe; anything
-- else by its status. done() writes the counts, the unsubscribe tokens answered and the latency
-- percentiles to the file named by $TRACKING_WRK_OUT, for bench/tracking.py to check against
-- the database.

local HUMAN = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko)"
local threads = {}
local requests = {}
local position = 0
counts = {}
tokens = {}

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

function init(args)
  local path, thread_count = args[1], tonumber(args[2])
  local get_headers = { ["User-Agent"] = HUMAN }
  local post_headers = {
    ["User-Agent"] = HUMAN,
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }
  local line_number = 0
  for line in io.lines(path) do
    if math.floor(line_number / 10) % thread_count == thread_index then
      local method, target = line:match("^(%u+) (%S+)$")
      if method == "POST" then
        table.insert(requests, wrk.format("POST", target, post_headers, "List-Unsubscribe=One-Click"))
      else
        table.insert(requests, wrk.format("GET", target, get_headers))
      end
    end
    line_number = line_number + 1
  end
end

function request()
  position = position % #requests + 1
  return requests[position]
end

-- Header names as the server wrote them: gunicorn keeps the application's case, uvicorn
-- lower-cases them (both are HTTP).
local function header(headers, name)
  return headers[name] or headers[name:lower()]
end

function response(status, headers, body)
  local kind
  if status == 200 and header(headers, "Content-Type") == "image/gif" then
    kind = "open"
  elseif status == 302 and (header(headers, "Location") or ""):match("^https?://") then
    kind = "click"
  elseif status == 200 then
    local token = body:match('action="/e/u/([^/"]+)/resubscribe/"')
    if token then
      kind = "unsubscribe"
      tokens[token] = true
    else
      kind = "other 200"
    end
  else
    kind = "status " .. status
  end
  counts[kind] = (counts[kind] or 0) + 1
end

function done(summary, latency, requests)
  local out = assert(io.open(os.getenv("TRACKING_WRK_OUT"), "w"))
  out:write(string.format("requests %d\nduration_us %d\n", summary.requests, summary.duration))
  for _, name in ipairs({ "connect", "read", "write", "status", "timeout" }) do
    out:write(string.format("error %s %d\n", name, summary.errors[name]))
  end
  for _, pct in ipairs({ 50, 90, 95, 99, 99.9 }) do
    out:write(string.format("latency_us %s %d\n", pct, latency:percentile(pct)))
  end
  out:write(string.format("latency_us max %d\nlatency_us mean %f\n", latency.max, latency.mean))
  for _, thread in ipairs(threads) do
    for kind, count in pairs(thread:get("counts")) do
      out:write(string.format("count %s %d\n", (kind:gsub(" ", "_")), count))
    end
    for token, _ in pairs(thread:get("tokens")) do
      out:write("token " .. token .. "\n")
    end
  end
  out:close()
end
