-- Phase admission shared by gateway replicas (see gateway/shared_phases.py).
--
-- KEYS: 1 state (hash: phase, epoch, started, gather_until, entering, entering_until,
--       warnings), 2 holders (zset member -> lease end), 3 waiters (zset member -> lease
--       end), 4 since (hash member -> when it began waiting), 5 starts (hash phase -> count)
-- ARGV: 1 op (acquire | release | leave | opened | renew), 2 member ("phase|call id"; for
--       renew, members separated by spaces), 3 lease ms, 4 join window ms, 5 gather ms,
--       6 max wait ms (negative: never run beside), 7 exclusive phases (",a,b,"),
--       8 phases with an entry hook (",a,"), 9 wake-up channel, 10 hook warnings (JSON)
-- Times are Redis's clock in ms, the one clock every replica shares.
local state, holders, waiters, since, starts = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local op, member = ARGV[1], ARGV[2]
local lease, join_window = tonumber(ARGV[3]), tonumber(ARGV[4])
local gather, max_wait = tonumber(ARGV[5]), tonumber(ARGV[6])
local exclusive, hooked, channel = ARGV[7], ARGV[8], ARGV[9]

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function phase_of(m) return string.match(m, '^([^|]*)|') end
local function listed(set, p) return p ~= '' and string.find(set, ',' .. p .. ',', 1, true) ~= nil end
local function get(field, default)
  local v = redis.call('HGET', state, field)
  if v then return v end
  return default
end

-- Calls of a replica that stopped renewing (killed, cut off) are forgotten.
redis.call('ZREMRANGEBYSCORE', holders, '-inf', now)
for _, m in ipairs(redis.call('ZRANGEBYSCORE', waiters, '-inf', now)) do
  redis.call('ZREM', waiters, m)
  redis.call('HDEL', since, m)
end

local cur = get('phase', '')
local epoch = tonumber(get('epoch', '0'))
local started = tonumber(get('started', '0'))
local gather_until = tonumber(get('gather_until', '0'))
local served = tonumber(get('served', '0'))
local entering = get('entering', '')
if entering ~= '' and entering ~= '*' and tonumber(get('entering_until', '0')) < now then
  -- The replica running the entry hook is gone: the next caller of the phase runs it.
  entering = '*'
  redis.call('HSET', state, 'entering', '*')
end

local function running(p)
  local n = 0
  for _, m in ipairs(redis.call('ZRANGE', holders, 0, -1)) do
    if phase_of(m) == p then n = n + 1 end
  end
  return n
end

local function busy_beside(p)
  for _, m in ipairs(redis.call('ZRANGE', holders, 0, -1)) do
    if phase_of(m) ~= p then return true end
  end
  return false
end

-- The waiter that has waited longest among phases other than `except` (nil: any phase).
local function oldest(except)
  local best, best_since = nil, nil
  local all = redis.call('HGETALL', since)
  for i = 1, #all, 2 do
    local p, s = phase_of(all[i]), tonumber(all[i + 1])
    if p ~= except and (best_since == nil or s < best_since) then best, best_since = p, s end
  end
  return best, best_since
end

local function start(p)
  cur, epoch, started, gather_until = p, epoch + 1, now, 0
  redis.call('HSET', state, 'phase', p, 'epoch', epoch, 'started', now, 'gather_until', 0,
    'served', 0, 'warnings', '[]')
  redis.call('HINCRBY', starts, p, 1)
  if listed(hooked, p) then
    entering = '*'
    redis.call('HSET', state, 'entering', '*')
  end
  redis.call('PUBLISH', channel, epoch)
end

local function go_idle()
  cur, gather_until = '', 0
  redis.call('HSET', state, 'phase', '', 'gather_until', 0)
end

-- Starts the next phase once the current one has drained (and gathered: when calls of
-- another phase wait, or after a burst of calls, whose later requests may be arriving).
local function advance()
  if entering ~= '' then return end
  if cur ~= '' and running(cur) > 0 then return end
  local nxt = oldest(cur)
  if nxt == nil then nxt = oldest(nil) end
  if cur ~= '' and nxt ~= cur and (nxt ~= nil or served > 1) then
    if gather_until == 0 then
      gather_until = now + gather
      redis.call('HSET', state, 'gather_until', gather_until)
    end
    if now < gather_until then return end
  end
  if nxt == nil then
    go_idle()
    return
  end
  if (listed(exclusive, nxt) or listed(exclusive, cur)) and redis.call('ZCARD', holders) > 0 then
    -- Calls that ran beside the queue still hold the GPU; their release advances.
    go_idle()
    return
  end
  start(nxt)
end

local function admit(waited)
  redis.call('ZADD', holders, now + lease, member)
  redis.call('ZREM', waiters, member)
  redis.call('HDEL', since, member)
  if gather_until ~= 0 then redis.call('HSET', state, 'gather_until', 0) end
  redis.call('HINCRBY', state, 'served', 1)
  local warnings = '[]'
  if waited then warnings = get('warnings', '[]') end
  return {'admitted', warnings}
end

local function claim_entry()
  entering = member
  redis.call('HSET', state, 'entering', member, 'entering_until', now + lease)
  redis.call('ZADD', waiters, now + lease, member)
  return {'enter', '[]'}
end

if op == 'renew' then
  for m in string.gmatch(member, '%S+') do
    redis.call('ZADD', holders, 'XX', now + lease, m)
    if entering == m then redis.call('HSET', state, 'entering_until', now + lease) end
  end
  return {'renewed', '[]'}
end

if op == 'release' or op == 'leave' then
  redis.call('ZREM', holders, member)
  redis.call('ZREM', waiters, member)
  redis.call('HDEL', since, member)
  if entering == member then
    entering = '*'
    redis.call('HSET', state, 'entering', '*')
  end
  advance()
  redis.call('PUBLISH', channel, epoch)
  return {'released', '[]'}
end

if op == 'opened' then
  if entering ~= member then return {'wait', '[]'} end
  entering = ''
  redis.call('HSET', state, 'entering', '', 'warnings', ARGV[10])
  redis.call('PUBLISH', channel, epoch)
  return admit(true)
end

-- op == 'acquire'
advance()
local p = phase_of(member)
local my_since = tonumber(redis.call('HGET', since, member) or now)
if entering ~= '' then
  if cur == p and entering == '*' and my_since <= started then return claim_entry() end
elseif cur == p then
  -- Waiting since before the phase started: admitted with the phase. Newcomers join
  -- while no other phase's call has waited longer than the join window.
  if my_since <= started then return admit(true) end
  local _, other_since = oldest(p)
  if other_since == nil or now < other_since + join_window then return admit(false) end
elseif cur == '' and oldest(nil) == nil and not busy_beside(p) then
  start(p)
  if entering ~= '' then return claim_entry() end
  return admit(false)
end

redis.call('HSETNX', since, member, my_since)
redis.call('ZADD', waiters, now + lease, member)
if max_wait >= 0 and now >= my_since + max_wait
    and not listed(exclusive, p) and not listed(exclusive, cur) then
  redis.call('ZREM', waiters, member)
  redis.call('HDEL', since, member)
  redis.call('ZADD', holders, now + lease, member)
  return {'bypassed', '[]'}
end
-- While the drained phase gathers, come back when the gathering ends.
if gather_until ~= 0 then return {'wait', '[]', math.max(gather_until - now, 1)} end
return {'wait', '[]'}
