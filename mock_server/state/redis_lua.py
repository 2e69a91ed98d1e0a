"""The Lua scripts of :class:`~wanmock.server.state.redis.RedisState`: each one atomic step, one
round trip.

Keys (``P`` is ``wm:{namespace}:``, hash-tagged so a Redis Cluster slot holds a namespace):

* ``P job:<id>`` — a hash: ``d`` the immutable record (JSON), ``s``/``e``/``c`` its start, end and
  cancel times (Python ``repr`` of floats, ``''``: not cancelled), ``v`` its version, ``q`` its
  slot queue, ``p``/``n`` a poll-driven job's poll target and count, ``x`` its expiry, ``o``/``k``
  its owner and the bytes it keeps;
* ``P q:<name>`` — a hash: ``b`` the FIFO queue value (JSON, see ``FifoQueue.to_state``), ``v``
  its version (queues change by compare-and-set on it: the arithmetic stays in Python);
* ``P evict`` / ``P order`` — sorted sets of job ids by eviction time and by creation;
* ``P kept`` — bytes kept per owner; ``P rw`` — rate windows (``start|used`` per bucket:key);
* ``P scopes`` + ``P script:<provider>:<operation>`` — scripted responses (``fault|retry|blocks``).

Floats are never formatted in Lua (its ``tostring`` keeps 14 digits): Python sends the strings
it wants stored, and Lua only compares numbers.
"""

from __future__ import annotations

__all__ = ["CANCEL", "COUNT_POLL", "CREATE", "QUEUE_COMMIT", "READ", "SET_IF"]

_COMMON = """
local P = ARGV[1]

-- The gate: pop a scripted response (most specific scope first), count the rate window.
-- ARGV[i..i+7]: '1' (pass it) or '0', provider, operation, bucket, key, requests ('': no
-- limit), window start, seconds left in the window.
local function gate(i)
  if ARGV[i] ~= '1' then return false, false end
  local script = false
  local provider, op = ARGV[i + 1], ARGV[i + 2]
  if redis.call('SCARD', P .. 'scopes') > 0 then
    for _, scope in ipairs({provider .. ':' .. op, '*:' .. op, provider .. ':*', '*:*'}) do
      local item = redis.call('LPOP', P .. 'script:' .. scope)
      if item then
        if redis.call('LLEN', P .. 'script:' .. scope) == 0 then
          redis.call('SREM', P .. 'scopes', scope)
        end
        script = item
        break
      end
    end
  end
  local wait = false
  local key, requests = ARGV[i + 4], ARGV[i + 5]
  if requests ~= '' and key ~= '' then
    local field = ARGV[i + 3] .. ':' .. key
    local start = ARGV[i + 6]
    local used = 1
    local old = redis.call('HGET', P .. 'rw', field)
    if old then
      local sep = string.find(old, '|', 1, true)
      if string.sub(old, 1, sep - 1) == start then
        used = tonumber(string.sub(old, sep + 1)) + 1
      end
    end
    redis.call('HSET', P .. 'rw', field, start .. '|' .. used)
    if used > tonumber(requests) then wait = ARGV[i + 7] end
  end
  return script, wait
end

local function blocks(script, wait)
  return wait or (script and string.sub(script, -2) == '|1')
end

-- New start and end of rescheduled jobs: ARGV[from..] as (id, start, end) triples.
local function apply(from)
  for i = from, #ARGV, 3 do
    local k = P .. 'job:' .. ARGV[i]
    if redis.call('EXISTS', k) == 1 then
      redis.call('HSET', k, 's', ARGV[i + 1], 'e', ARGV[i + 2])
      redis.call('HINCRBY', k, 'v', 1)
    end
  end
end

-- Compare-and-set a queue's version; a conflict answers the current value to compute again.
local function queue_conflict(key, expected)
  local cur = redis.call('HGET', key, 'v') or '0'
  if cur ~= expected then
    return {'conflict', redis.call('HGET', key, 'b') or false, cur}
  end
  return false
end

local function forget(id)
  local k = P .. 'job:' .. id
  local f = redis.call('HMGET', k, 'o', 'k')
  if f[1] then
    if redis.call('HINCRBY', P .. 'kept', f[1], -tonumber(f[2])) <= 0 then
      redis.call('HDEL', P .. 'kept', f[1])
    end
    redis.call('DEL', k)
    redis.call('INCR', P .. 'evicted')
  end
  redis.call('ZREM', P .. 'evict', id)
  redis.call('ZREM', P .. 'order', id)
end
"""

#: KEYS: job. ARGV: P, now, gate (8). Answers the passage, the job's fields and, if it waits in
#: a slot queue, the queue's value and version.
READ = _COMMON + """
local script, wait = gate(3)
local f = redis.call('HMGET', KEYS[1], 'd', 's', 'e', 'c', 'v', 'q')
if not f[1] then return {script, wait, false} end
local blob, version = false, false
if f[6] and f[6] ~= '' and tonumber(f[2]) > tonumber(ARGV[2]) then
  local q = redis.call('HMGET', P .. 'q:' .. f[6], 'b', 'v')
  blob, version = q[1], q[2]
end
return {script, wait, f[1], f[2], f[3], f[4] or '', f[5], blob, version}
"""

#: KEYS: job, queue. ARGV: P, now, gate (8) at 3, queue version expected ('': not slotted) at
#: 11, new queue value, budget ('': none), owner, cost, max jobs, then the job's fields d s e c
#: q p x and evict_at (17..24), then rescheduled jobs (25..).
CREATE = _COMMON + """
local slotted = ARGV[11] ~= ''
local version = 0
if slotted then
  local conflict = queue_conflict(KEYS[2], ARGV[11])
  if conflict then return conflict end
  version = tonumber(ARGV[11])
end
local script, wait = gate(3)
if blocks(script, wait) then return {'blocked', script, wait} end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'evict', '-inf', ARGV[2], 'LIMIT', 0, 256)) do
  forget(id)
end
if redis.call('EXISTS', KEYS[1]) == 1 then return {'taken', script, wait} end
local owner, cost = ARGV[14], tonumber(ARGV[15])
if ARGV[13] ~= '' then
  local kept = tonumber(redis.call('HGET', P .. 'kept', owner) or '0')
  if kept + cost > tonumber(ARGV[13]) then return {'budget', script, wait} end
end
redis.call('HINCRBY', P .. 'kept', owner, cost)
if redis.call('ZCARD', P .. 'order') >= tonumber(ARGV[16]) then
  forget(redis.call('ZRANGE', P .. 'order', 0, 0)[1])
end
if slotted then
  redis.call('HSET', KEYS[2], 'b', ARGV[12], 'v', version + 1)
  apply(25)
end
local id = string.sub(KEYS[1], #P + 5)
redis.call('HSET', KEYS[1], 'd', ARGV[17], 's', ARGV[18], 'e', ARGV[19], 'c', ARGV[20],
           'q', ARGV[21], 'p', ARGV[22], 'x', ARGV[23], 'v', 0, 'o', owner, 'k', cost)
redis.call('ZADD', P .. 'evict', ARGV[24], id)
redis.call('ZADD', P .. 'order', redis.call('INCR', P .. 'created'), id)
return {'created', script, wait}
"""

#: KEYS: job, queue. ARGV: P, version expected, cancelled at, new start and end ('': kept),
#: queue version expected ('': no queue change), new queue value, rescheduled jobs (8..).
CANCEL = _COMMON + """
local v = redis.call('HGET', KEYS[1], 'v')
if not v or v ~= ARGV[2] then return {'version'} end
if ARGV[6] ~= '' then
  local conflict = queue_conflict(KEYS[2], ARGV[6])
  if conflict then return conflict end
  redis.call('HSET', KEYS[2], 'b', ARGV[7], 'v', tonumber(ARGV[6]) + 1)
  apply(8)
end
redis.call('HSET', KEYS[1], 'c', ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 's', ARGV[4], 'e', ARGV[5]) end
return {'ok', redis.call('HINCRBY', KEYS[1], 'v', 1)}
"""

#: KEYS: queue. ARGV: P, version expected, new value, rescheduled jobs (4..): a queue settled
#: by a read, written back.
QUEUE_COMMIT = _COMMON + """
local conflict = queue_conflict(KEYS[1], ARGV[2])
if conflict then return conflict end
redis.call('HSET', KEYS[1], 'b', ARGV[3], 'v', tonumber(ARGV[2]) + 1)
apply(4)
return {'ok'}
"""

#: KEYS: job. ARGV: P, now (its string). Counts a poll of a poll-driven job that has not ended;
#: at its target it ends now. Answers the job's fields (``false``: gone).
COUNT_POLL = _COMMON + """
local k = KEYS[1]
local f = redis.call('HMGET', k, 'd', 's', 'e', 'c', 'v', 'p', 'x')
if not f[1] then return false end
local now = tonumber(ARGV[2])
local c = f[4] or ''
if f[6] and f[6] ~= '' then
  local terminal = now >= tonumber(f[7]) or (c ~= '' and now >= tonumber(c))
                   or (now >= tonumber(f[2]) and now >= tonumber(f[3]))
  if not terminal then
    if redis.call('HINCRBY', k, 'n', 1) >= tonumber(f[6]) then
      redis.call('HDEL', k, 'n')
      local s = f[2]
      if tonumber(s) > now then s = ARGV[2] end
      redis.call('HSET', k, 's', s, 'e', ARGV[2])
      return {f[1], s, ARGV[2], c, redis.call('HINCRBY', k, 'v', 1)}
    end
  end
end
return {f[1], f[2], f[3], c, f[5]}
"""

#: KEYS: a string key. ARGV: expected value, new value. Sets it only if it holds the expected
#: value (``''``: absent); answers 1 if set.
SET_IF = """
local cur = redis.call('GET', KEYS[1]) or ''
if cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"""
