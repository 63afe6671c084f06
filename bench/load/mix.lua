-- wrk script for bench/bench_load.py: replays a weighted mix of requests planned in
-- Python and records, per request, its kind, HTTP status and latency.
--
-- Environment (set by bench_load.py):
--   LAOWU_LOAD_PLAN  a directory with plan-<thread>.tsv: per thread, the weighted request
--                    sequence it cycles through and its pools of one-time writes
--                    (written by bench_load.py, ``write_plan``)
--   LAOWU_LOAD_OUT   where done() writes the samples (one "kind<TAB>status<TAB>µs" a line)
--
-- Run with as many threads as connections (wrk -t N -c N): with one connection per
-- thread a response always belongs to the request this thread sent last, so each
-- sample's kind and latency are exact.

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } laowu_timespec;
  int clock_gettime(int clk_id, laowu_timespec *tp);
]]
local ts = ffi.new("laowu_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end

-- Per thread: the prepared raw requests, the cursor, the samples.
local reads, writes = {}, {}
local pos = 0
local cur_kind, started = 0, 0
samples_kind, samples_status, samples_us = {}, {}, {}
local n = 0

local function split(line)
  local fields = {}
  for f in (line .. "\t"):gmatch("([^\t]*)\t") do
    fields[#fields + 1] = f
  end
  return fields
end

local function headers_of(text)
  local h = {}
  for name, value in text:gmatch("([^|:]+): ([^|]*)") do
    h[name] = value
  end
  return h
end

local function format(method, path, headers, body)
  return wrk.format(method, path, headers_of(headers), body ~= "" and body or nil)
end

function init(args)
  -- plan-<thread>.tsv, one request a line (tab-separated):
  --   S kind method path headers body [pool fallback_kind fallback_method fallback_path fallback_headers]
  --   W pool method path headers body
  -- headers as "Name: value|Name: value"
  local path = os.getenv("LAOWU_LOAD_PLAN") .. "/plan-" .. tid .. ".tsv"
  for line in io.lines(path) do
    local f = split(line)
    if f[1] == "S" then
      local entry = { kind = f[2], raw = format(f[3], f[4], f[5], f[6]) }
      if f[7] and f[7] ~= "" then
        entry.pool = f[7]
        entry.fallback_kind = f[8]
        entry.fallback_raw = format(f[9], f[10], f[11], "")
      end
      reads[#reads + 1] = entry
    elseif f[1] == "W" then
      local w = writes[f[2]]
      if w == nil then
        w = { pos = 0, items = {} }
        writes[f[2]] = w
      end
      w.items[#w.items + 1] = format(f[3], f[4], f[5], f[6])
    end
  end
end

function request()
  pos = pos + 1
  if pos > #reads then pos = 1 end
  local entry = reads[pos]
  cur_kind = entry.kind
  local raw = entry.raw
  if entry.pool then
    -- A write that must not repeat (approving a submission, recommending a worker
    -- to a job): take the next unused one; when they are used up, the slot sends
    -- its read fallback instead (counted under the fallback's kind).
    local w = writes[entry.pool]
    if w ~= nil and w.pos < #w.items then
      w.pos = w.pos + 1
      raw = w.items[w.pos]
    else
      cur_kind = entry.fallback_kind
      raw = entry.fallback_raw
    end
  end
  started = now_us()
  return raw
end

function response(status, headers, body)
  n = n + 1
  samples_kind[n] = cur_kind
  samples_status[n] = status
  samples_us[n] = now_us() - started
end

function done(summary, latency, requests)
  local out = assert(io.open(os.getenv("LAOWU_LOAD_OUT"), "w"))
  local e = summary.errors
  out:write(string.format("#summary\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", summary.duration,
    summary.requests, e.connect, e.read, e.write, e.status, e.timeout))
  for _, thread in ipairs(threads) do
    local kinds = thread:get("samples_kind")
    local statuses = thread:get("samples_status")
    local us = thread:get("samples_us")
    for i = 1, #kinds do
      out:write(kinds[i], "\t", statuses[i], "\t", string.format("%.0f", us[i]), "\n")
    end
  end
  out:close()
end
