-- wrk script for every frsync scenario: `wrk … -s bench/wrk/frsync.lua -- MODE TARGETS [HOSTILE]`
--
-- MODE: patch | get | list | healthz | once (each target's token once, then /healthz).
-- TARGETS: lines `token fr_id foreign_fr_id item,item,…` (bench/dataset.py writes them).
-- HOSTILE: share of PATCH requests that are hostile or foreign, e.g. 0.1: in turn an FR of
-- another account (404), malformed JSON (400) and an unknown token (401).
--
-- Requests walk the targets with a large prime stride, so consecutive requests use unrelated
-- tokens and FRs. Every answer's status is counted, and so is the status each request was
-- built to get; done() prints both with the latency figures as one JSON line.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_index", #threads)
end

-- Globals, not locals: done() reads `expected` and `statuses` through thread:get().
targets, position, sent_count, expected, statuses = nil, 0, 0, {}, {}
mode, hostile = "patch", 0
local STRIDE = 7919

function init(args)
  mode, hostile = args[1], tonumber(args[3] or "0")
  targets = {}
  for line in io.lines(args[2]) do
    local token, fr, foreign, items = line:match("^(%S+) (%d+) (%d+) (%S+)$")
    targets[#targets + 1] = { token = token, fr = fr, foreign = foreign, items = items }
  end
  position = (thread_index - 1) * 1009
  sent_count, expected, statuses = 0, {}, {}
end

local function expect(status)
  expected[status] = (expected[status] or 0) + 1
end

local function next_target()
  sent_count = sent_count + 1
  if mode == "once" then
    position = position + 1
    return targets[position]
  end
  position = (position + STRIDE) % #targets
  return targets[position + 1]
end

-- A connector's body: synced with its invoice and line ids, or (one in five) a failure.
local function patch_body(target, n)
  local items = {}
  local failed = n % 5 == 0
  for id in target.items:gmatch("%d+") do
    local external = failed and "null" or ('"QB-LINE-' .. id .. "-" .. n .. '"')
    items[#items + 1] = '{"id":' .. id .. ',"externalAccountingItemId":' .. external .. "}"
  end
  local head
  if failed then
    head = '{"accountingSynced":false,"externalAccountingId":null,'
      .. '"accountingError":"Customer not found in QuickBooks (attempt ' .. n .. ')",'
  else
    head = '{"accountingSynced":true,"externalAccountingId":"QB-INV-' .. target.fr .. "-" .. n
      .. '","accountingError":null,'
  end
  return head .. '"items":[' .. table.concat(items, ",") .. "]}"
end

local function patch(target, n)
  local token, fr, body = target.token, target.fr, patch_body(target, n)
  local expect_status = 204
  if hostile > 0 and n % math.floor(1 / hostile + 0.5) == 0 then
    local kind = math.floor(n / math.floor(1 / hostile + 0.5)) % 3
    if kind == 0 then
      fr, expect_status = target.foreign, 404
    elseif kind == 1 then
      body, expect_status = '{"accountingSynced": tru', 400
    else
      token, expect_status = "frs_not_a_real_token_" .. n, 401
    end
  end
  expect(expect_status)
  local headers = { ["X-API-TOKEN"] = token, ["Content-Type"] = "application/json" }
  return wrk.format("PATCH", "/fulfillment-requests/" .. fr .. "/accounting-sync", headers, body)
end

local LIST_PATH = "/fulfillment-requests?filterAccountingSynced=false"
  .. "&filterStatus=Processed,Acknowledged&filterPageSize=20"

function request()
  local target = next_target()
  if target == nil then -- `once` ran out of tokens: end the run
    if not finished then
      finished = true
      -- wrk sleeps for its whole -d; SIGINT (from a shell whose parent is wrk) ends it now.
      os.execute("kill -INT $PPID")
    end
    expect(200)
    return wrk.format("GET", "/healthz")
  end
  if mode == "patch" then
    return patch(target, sent_count)
  elseif mode == "healthz" then
    expect(200)
    return wrk.format("GET", "/healthz")
  end
  expect(mode == "once" and 400 or 200)
  local headers = { ["X-API-TOKEN"] = target.token }
  if mode == "get" then
    return wrk.format("GET", "/fulfillment-requests/" .. target.fr, headers)
  elseif mode == "list" then
    return wrk.format("GET", LIST_PATH, headers)
  end
  -- once: authenticated and charged to the token's bucket, then refused cheaply (id 0 → 400)
  return wrk.format("GET", "/fulfillment-requests/0", headers)
end

function response(status)
  statuses[status] = (statuses[status] or 0) + 1
end

local function merge(into, from)
  for key, count in pairs(from) do
    into[tostring(key)] = (into[tostring(key)] or 0) + count
  end
end

local function json_object(map)
  local parts = {}
  for key, value in pairs(map) do
    parts[#parts + 1] = string.format('"%s":%s', key, tostring(value))
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
  local all_statuses, all_expected = {}, {}
  for _, thread in ipairs(threads) do
    merge(all_statuses, thread:get("statuses"))
    merge(all_expected, thread:get("expected"))
  end
  local errors = summary.errors
  io.write("BENCH_JSON ", json_object({
    requests = summary.requests,
    duration_us = summary.duration,
    p50_us = latency:percentile(50),
    p99_us = latency:percentile(99),
    max_us = latency.max,
    socket_errors = errors.connect + errors.read + errors.write + errors.timeout,
    statuses = json_object(all_statuses),
    expected = json_object(all_expected),
  }), "\n")
end
