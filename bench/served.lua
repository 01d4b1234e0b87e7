-- The served workload's load generator for wrk (bench/served.py runs it):
--   wrk -t T -c C -d Ds -s bench/served.lua http://127.0.0.1:PORT -- PATHS_FILE
-- PATHS_FILE: the Cookie header value on the first line, then what every page must contain:
-- a line "marker <text>" per text (all of them, e.g. a row's class and "</html>"), a line
-- "count <text>" for the text counted on each page (rows, timeline entries), then one path a
-- line. Thread i starts at path i*7 and goes round them in order, so every path is asked for
-- as often as the others. done() writes the counts and latency percentiles to the file named
-- by $SERVED_WRK_OUT for bench/served.py.

local threads = {}
local requests = {}
local markers = {}
local counted = nil
local position = 0
ok, bad_status, bad_body, fewest, most = 0, 0, 0, -1, 0
statuses = {}

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

function init(args)
  local cookie
  for line in io.lines(args[1]) do
    if cookie == nil then
      cookie = line
    elseif line:sub(1, 7) == "marker " then
      table.insert(markers, line:sub(8))
    elseif line:sub(1, 6) == "count " then
      counted = line:sub(7)
    elseif line ~= "" then
      table.insert(requests, wrk.format("GET", line, { ["Cookie"] = cookie }))
    end
  end
  position = (thread_index * 7) % #requests
end

function request()
  position = position % #requests + 1
  return requests[position]
end

local function occurrences(body, text)
  local count, start = 0, 1
  while true do
    local found = body:find(text, start, true)
    if found == nil then
      return count
    end
    count = count + 1
    start = found + #text
  end
end

function response(status, headers, body)
  if status ~= 200 then
    bad_status = bad_status + 1
    statuses[tostring(status)] = (statuses[tostring(status)] or 0) + 1
    return
  end
  for _, marker in ipairs(markers) do
    if not body:find(marker, 1, true) then
      bad_body = bad_body + 1
      return
    end
  end
  if counted ~= nil then
    local count = occurrences(body, counted)
    if fewest < 0 or count < fewest then
      fewest = count
    end
    if count > most then
      most = count
    end
  end
  ok = ok + 1
end

function done(summary, latency, requests)
  local out = assert(io.open(os.getenv("SERVED_WRK_OUT"), "w"))
  out:write(string.format("requests %d\nduration_us %d\nbytes %d\n", summary.requests,
    summary.duration, summary.bytes))
  for _, name in ipairs({ "connect", "read", "write", "status", "timeout" }) do
    out:write(string.format("error %s %d\n", name, summary.errors[name]))
  end
  for _, pct in ipairs({ 50, 95, 99 }) do
    out:write(string.format("latency_us %s %d\n", pct, latency:percentile(pct)))
  end
  local good, status, body, low, high = 0, 0, 0, -1, 0
  for _, thread in ipairs(threads) do
    good = good + thread:get("ok")
    status = status + thread:get("bad_status")
    body = body + thread:get("bad_body")
    local thread_fewest = thread:get("fewest")
    if thread_fewest >= 0 and (low < 0 or thread_fewest < low) then
      low = thread_fewest
    end
    high = math.max(high, thread:get("most"))
    for code, count in pairs(thread:get("statuses")) do
      out:write(string.format("status %s %d\n", code, count))
    end
  end
  out:write(string.format("ok %d\nbad_status %d\nbad_body %d\nfewest %d\nmost %d\n", good,
    status, body, low, high))
  out:close()
end
