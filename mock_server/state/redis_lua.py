"""The Lua scripts of :class:`~wanmock.server.state.redis.RedisState`: each one atomic step, one
round trip.

The FIFO arithmetic is :class:`~wanmock.server.scheduler.FifoQueue`'s, line for line (same
formula, same event order; the conformance suite and the twin state machine hold the two
together), over a queue kept in Redis so that admitting a job costs O(log n), not a copy of the
queue.

Keys (``P`` is ``wm:{namespace}:``, hash-tagged so a Redis Cluster slot holds a namespace):

* ``P job:<id>`` — a hash: ``d`` the immutable record (JSON), ``s``/``e``/``c`` its start, end and
  cancel times (``''``: not cancelled), ``v`` its version, ``q``/``sq`` its slot queue and seq,
  ``p``/``n`` a poll-driven job's poll target and count, ``x`` its expiry, ``o``/``k`` its owner
  and the bytes it keeps;
* ``P q:<name>`` — a queue: ``c`` concurrency, ``f`` when each slot frees after the started jobs,
  ``t`` after the waiting ones too, ``l`` the last start, ``n`` the next seq; ``…:w`` waiting seqs
  (sorted set), ``…:e`` their entries (``id|ready|run|start|end|expires``), ``…:x`` expiries of
  waiting jobs that may expire before they start; ``P queues`` names every queue;
* ``P evict`` / ``P order`` — sorted sets of job ids by eviction time and by creation;
  ``P own:<provider>|<owner>`` — an owner's job ids by creation (for listing);
* ``P kept`` — bytes kept per owner; ``P rw`` — rate windows (``start|used`` per bucket:key);
* ``P scopes`` + ``P script:<provider>:<operation>`` — scripted responses (``fault|retry|blocks``).

Floats computed in Lua are written with ``%.17g`` (exact for a double); numbers from Python come
as ``repr`` strings.
"""

from __future__ import annotations

__all__ = ["CANCEL", "COUNT_POLL", "CREATE", "LIST", "QUEUE_STATS", "READ", "SET_IF"]

_COMMON = r"""
local P = ARGV[1]
local INF = math.huge

local function fmt(x) return string.format('%.17g', x) end
local function seqkey(seq) return string.format('%012d', seq) end

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

-- The census (state/census.py): jobs by provider and first phase, and the instants of every
-- kind of move (provider|from|to: a sorted set of job ids by instant), kept at every write.

local TERMINAL = {succeeded = true, failed = true, cancelled = true, expired = true}

local function phase_at(s, e, c, x, failed, now)
  if now >= x then return 'expired' end
  if c and now >= c then return 'cancelled' end
  if now < s then return 'queued' end
  if now < e then return 'running' end
  if failed then return 'failed' end
  return 'succeeded'
end

-- lifecycle.phase_changes: the first phase, then (instant, from, to) for each move.
local function phase_changes(f)
  local s, e, x = tonumber(f[1]), tonumber(f[2]), tonumber(f[4])
  local c = (f[3] and f[3] ~= '') and tonumber(f[3]) or nil
  local failed = f[5] == '1'
  local bounds, seen = {}, {}
  for _, t in ipairs({s, e, c or INF, x}) do
    if t ~= INF and not seen[t] then
      seen[t] = true
      bounds[#bounds + 1] = t
    end
  end
  table.sort(bounds)
  local first = phase_at(s, e, c, x, failed, -INF)
  local moves, last = {}, first
  for _, t in ipairs(bounds) do
    local phase = phase_at(s, e, c, x, failed, t)
    if phase ~= last then
      moves[#moves + 1] = {t, last, phase}
      last = phase
    end
  end
  return first, moves
end

-- Count (sign 1) or stop counting (-1) job ``id`` as its fields {s, e, c, x, f, pr} say.
local function census(id, f, sign)
  local first, moves = phase_changes(f)
  redis.call('HINCRBY', P .. 'cf', f[6] .. '|' .. first, sign)
  for _, m in ipairs(moves) do
    local kind = f[6] .. '|' .. m[2] .. '|' .. m[3]
    if sign > 0 then
      redis.call('ZADD', P .. 'cm:' .. kind, m[1], id)
      redis.call('SADD', P .. 'cmk', kind)
    else
      redis.call('ZREM', P .. 'cm:' .. kind, id)
    end
  end
  return first, moves
end

local CENSUS_FIELDS = {'s', 'e', 'c', 'x', 'f', 'pr'}

-- New start, end or cancel time of a stored job (nil: kept), counted anew; a new version.
local function set_times(k, id, s, e, c)
  local old = redis.call('HMGET', k, unpack(CENSUS_FIELDS))
  census(id, old, -1)
  local new = {s or old[1], e or old[2], c or old[3] or '', old[4], old[5], old[6]}
  redis.call('HSET', k, 's', new[1], 'e', new[2], 'c', new[3])
  census(id, new, 1)
  return redis.call('HINCRBY', k, 'v', 1)
end

-- FIFO queues (scheduler.py) ------------------------------------------------------------------

local function numbers(text)
  local out = {}
  for part in string.gmatch(text, '[^,]+') do out[#out + 1] = tonumber(part) end
  return out
end

local function joined(values)
  local out = {}
  for i, x in ipairs(values) do out[i] = fmt(x) end
  return table.concat(out, ',')
end

local function argmin(values)
  local best = 1
  for i = 2, #values do if values[i] < values[best] then best = i end end
  return best
end

-- The FIFO rule: which slot a job takes and when it starts.
local function next_start(free, last, ready, now)
  local i = argmin(free)
  return i, math.max(ready, free[i], last, now)
end

local function load_queue(name, concurrency)
  local key = P .. 'q:' .. name
  local m = redis.call('HMGET', key, 'c', 'f', 't', 'l', 'n')
  local q = {key = key, w = key .. ':w', e = key .. ':e', x = key .. ':x', changed = {},
             dirty = false}
  if m[1] then
    q.c, q.free, q.tail = tonumber(m[1]), numbers(m[2]), numbers(m[3])
    q.last, q.next = tonumber(m[4]), tonumber(m[5])
  else
    if not concurrency then return nil end
    q.c, q.free, q.tail, q.last, q.next = concurrency, {}, {}, -INF, 0
    for i = 1, concurrency do q.free[i] = -INF; q.tail[i] = -INF end
    q.dirty = true
    redis.call('SADD', P .. 'queues', name)
  end
  return q
end

local function entry(q, key)
  local raw = redis.call('HGET', q.e, key)
  if not raw then return nil end
  local f = {}
  for part in string.gmatch(raw, '[^|]+') do f[#f + 1] = part end
  return {key = key, id = f[1], ready = tonumber(f[2]), run = tonumber(f[3]),
          start = tonumber(f[4]), stop = tonumber(f[5]), expires = tonumber(f[6])}
end

local function put(q, e)
  redis.call('HSET', q.e, e.key, e.id .. '|' .. fmt(e.ready) .. '|' .. fmt(e.run) .. '|' ..
             fmt(e.start) .. '|' .. fmt(e.stop) .. '|' .. fmt(e.expires))
end

local function commit(q, e)
  local i = argmin(q.free)
  q.free[i] = e.stop
  q.last = math.max(q.last, e.start)
  q.dirty = true
end

local function reschedule(q, at)
  local free = {}
  for i, x in ipairs(q.free) do free[i] = x end
  local last = q.last
  for _, key in ipairs(redis.call('ZRANGE', q.w, 0, -1)) do
    local e = entry(q, key)
    local i, start = next_start(free, last, e.ready, at)
    if start ~= e.start then
      e.start, e.stop = start, start + e.run
      put(q, e)
      q.changed[key] = e
      if e.expires < start then redis.call('ZADD', q.x, e.expires, key) end
    end
    free[i] = e.stop
    last = start
  end
  q.tail = free
  q.dirty = true
end

local function remove(q, e, at)
  redis.call('ZREM', q.w, e.key)
  redis.call('HDEL', q.e, e.key)
  redis.call('ZREM', q.x, e.key)
  q.changed[e.key] = nil
  reschedule(q, at)
end

-- Play what happened up to now in time order: starts and waiting jobs' expiries.
local function settle(q, now)
  while true do
    local head = redis.call('ZRANGE', q.w, 0, 0)[1]
    local first = head and entry(q, head)
    local start = first and first.start or INF
    local expiry, due = INF, nil
    while true do
      local top = redis.call('ZRANGE', q.x, 0, 0, 'WITHSCORES')
      if #top == 0 then break end
      if redis.call('HEXISTS', q.e, top[1]) == 1 then
        expiry, due = tonumber(top[2]), top[1]
        break
      end
      redis.call('ZREM', q.x, top[1])  -- started or removed meanwhile
    end
    if math.min(start, expiry) > now then break end
    if start <= expiry then
      redis.call('ZREM', q.w, head)
      redis.call('HDEL', q.e, head)
      commit(q, first)
    else
      redis.call('ZREM', q.x, due)
      local e = entry(q, due)
      if e.start > expiry then remove(q, e, expiry) end  -- a ghost: expired while waiting
    end
  end
end

local function admit(q, id, ready, run, now, expires)
  settle(q, now)
  local seq = q.next
  q.next = seq + 1
  local last = q.last
  local tail = redis.call('ZRANGE', q.w, -1, -1)[1]
  if tail then last = entry(q, tail).start end
  local i, start = next_start(q.tail, last, ready, now)
  local stop = start + run
  q.tail[i] = stop
  local e = {key = seqkey(seq), id = id, ready = ready, run = run, start = start, stop = stop,
             expires = expires}
  if start <= now then
    commit(q, e)
  else
    redis.call('ZADD', q.w, seq, e.key)
    put(q, e)
    if expires < start then redis.call('ZADD', q.x, expires, e.key) end
  end
  q.dirty = true
  return seq, start, stop
end

local function position(q, seq, now)
  settle(q, now)
  return redis.call('ZCOUNT', q.w, '-inf', '(' .. seq)
end

local function cancel_in(q, seq, now)
  settle(q, now)
  local e = entry(q, seqkey(seq))
  if e then remove(q, e, now) end
end

-- Write the queue back and the new schedules into the records (a new version each).
local function finish(q)
  if q.dirty then
    redis.call('HSET', q.key, 'c', q.c, 'f', joined(q.free), 't', joined(q.tail),
               'l', fmt(q.last), 'n', q.next)
  end
  for _, e in pairs(q.changed) do
    local k = P .. 'job:' .. e.id
    if redis.call('EXISTS', k) == 1 then set_times(k, e.id, fmt(e.start), fmt(e.stop), nil) end
  end
  q.changed = {}
  q.dirty = false
end

local function forget(id, now)
  local k = P .. 'job:' .. id
  local f = redis.call('HMGET', k, 'o', 'k', 'q', 'sq', 's', 'pr')
  if f[1] then
    redis.call('ZREM', P .. 'own:' .. (f[6] or '') .. '|' .. f[1], id)
    local fields = redis.call('HMGET', k, unpack(CENSUS_FIELDS))
    local first, moves = census(id, fields, -1)
    local ended = TERMINAL[first] and first or nil  -- it still counts as finished if it had
    if not ended then
      for _, m in ipairs(moves) do
        if TERMINAL[m[3]] then
          if m[1] <= now then ended = m[3] end
          break
        end
      end
    end
    if ended then redis.call('HINCRBY', P .. 'cgone', fields[6] .. '|' .. ended, 1) end
    redis.call('DEL', k)
    if redis.call('HINCRBY', P .. 'kept', f[1], -tonumber(f[2])) <= 0 then
      redis.call('HDEL', P .. 'kept', f[1])
    end
    redis.call('INCR', P .. 'evicted')
    if f[3] and f[3] ~= '' and tonumber(f[5]) > now then  -- still waiting: it leaves
      local q = load_queue(f[3])
      if q then
        cancel_in(q, tonumber(f[4]), now)
        finish(q)
      end
    end
  end
  redis.call('ZREM', P .. 'evict', id)
  redis.call('ZREM', P .. 'order', id)
end

local FIELDS = {'d', 's', 'e', 'c', 'v', 'sq'}

-- A job's fields d s e c v sq as read (HMGET of FIELDS and 'q'), its queue settled to now
-- first if it still waits there, and its slot position then (false: it waits in none).
local function settled(k, f, now)
  local at = false
  if f[7] and f[7] ~= '' and tonumber(f[2]) > now then
    local q = load_queue(f[7])
    if q then
      at = position(q, tonumber(f[6]), now)
      finish(q)
      f = redis.call('HMGET', k, unpack(FIELDS))
    end
  end
  return f, at
end
"""

#: KEYS: job. ARGV: P, now, gate (8). Answers the passage, the job's fields (``d s e c v sq``)
#: and, if it waits in a slot queue, its position (the queue settled to now first).
READ = _COMMON + """
local script, wait = gate(3)
local f = redis.call('HMGET', KEYS[1], 'd', 's', 'e', 'c', 'v', 'sq', 'q')
if not f[1] then return {script, wait, false} end
local at
f, at = settled(KEYS[1], f, tonumber(ARGV[2]))
return {script, wait, f[1], f[2], f[3], f[4] or '', f[5], f[6] or '', at}
"""

#: KEYS: job. ARGV: P, now, gate (8) at 3, budget ('': none) at 11, owner, cost, max jobs,
#: the job's fields d s e c q p x (15..21), evict_at, for a slotted job its ready time, run
#: seconds and concurrency (23..25; else ''), the provider (26), '1' if it will fail (27).
#: Answers the outcome, the
#: passage and, once created, the seq, start, end and position the queue gave it.
CREATE = _COMMON + """
local now = tonumber(ARGV[2])
local script, wait = gate(3)
if blocks(script, wait) then return {'blocked', script, wait} end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'evict', '-inf', ARGV[2], 'LIMIT', 0, 256)) do
  forget(id, now)
end
if redis.call('EXISTS', KEYS[1]) == 1 then return {'taken', script, wait} end
local owner, cost = ARGV[12], tonumber(ARGV[13])
if ARGV[11] ~= '' then
  local kept = tonumber(redis.call('HGET', P .. 'kept', owner) or '0')
  if kept + cost > tonumber(ARGV[11]) then return {'budget', script, wait} end
end
redis.call('HINCRBY', P .. 'kept', owner, cost)
if redis.call('ZCARD', P .. 'order') >= tonumber(ARGV[14]) then  -- the oldest goes first
  forget(redis.call('ZRANGE', P .. 'order', 0, 0)[1], now)
end
local id = string.sub(KEYS[1], #P + 5)
local s, e, sq, at = ARGV[16], ARGV[17], '', false
if ARGV[19] ~= '' then
  local q = load_queue(ARGV[19], tonumber(ARGV[25]))
  local seq, start, stop = admit(q, id, tonumber(ARGV[23]), tonumber(ARGV[24]), now,
                                 tonumber(ARGV[21]))
  finish(q)
  if start > now then at = position(q, seq, now); finish(q) end
  s, e, sq = fmt(start), fmt(stop), tostring(seq)
end
redis.call('HSET', KEYS[1], 'd', ARGV[15], 's', s, 'e', e, 'c', ARGV[18], 'q', ARGV[19],
           'sq', sq, 'p', ARGV[20], 'x', ARGV[21], 'v', 0, 'o', owner, 'k', cost,
           'f', ARGV[27], 'pr', ARGV[26])
census(id, {s, e, ARGV[18], ARGV[21], ARGV[27], ARGV[26]}, 1)
redis.call('ZADD', P .. 'evict', ARGV[22], id)
local created = redis.call('INCR', P .. 'created')
redis.call('ZADD', P .. 'order', created, id)
redis.call('ZADD', P .. 'own:' .. ARGV[26] .. '|' .. owner, created, id)
redis.call('HINCRBY', P .. 'submitted', ARGV[26], 1)
return {'created', script, wait, sq, s, e, at}
"""

#: KEYS: an owner's set (``P own:<provider>|<owner>``). ARGV: P, now. Answers, newest first,
#: each live job's id, fields ``d s e c v sq`` and slot position (``false``: none), read as
#: READ reads one (its queue settled to now): 8 values per job.
LIST = _COMMON + """
local now = tonumber(ARGV[2])
local out = {}
for _, id in ipairs(redis.call('ZREVRANGE', KEYS[1], 0, -1)) do
  local k = P .. 'job:' .. id
  local evict = tonumber(redis.call('ZSCORE', P .. 'evict', id) or '-inf')
  local f = redis.call('HMGET', k, 'd', 's', 'e', 'c', 'v', 'sq', 'q')
  if f[1] and evict > now then
    local at
    f, at = settled(k, f, now)
    for _, v in ipairs({id, f[1], f[2], f[3], f[4] or '', f[5], f[6] or '', at}) do
      out[#out + 1] = v
    end
  end
end
return out
"""

#: KEYS: job. ARGV: P, version expected, now, '1' if it was queued (it leaves its queue and
#: will never run) else '0'. Answers the job's fields, or ``false`` on a version conflict.
CANCEL = _COMMON + """
local f = redis.call('HMGET', KEYS[1], 'v', 'q', 'sq')
if not f[1] or f[1] ~= ARGV[2] then return false end
if ARGV[4] == '1' then
  if f[2] and f[2] ~= '' then
    local q = load_queue(f[2])
    if q then
      cancel_in(q, tonumber(f[3]), tonumber(ARGV[3]))
      finish(q)
    end
  end
  set_times(KEYS[1], string.sub(KEYS[1], #P + 5), 'inf', 'inf', ARGV[3])
else
  set_times(KEYS[1], string.sub(KEYS[1], #P + 5), nil, nil, ARGV[3])
end
return redis.call('HMGET', KEYS[1], unpack(FIELDS))
"""

#: ARGV: P, queue name, now. Answers the jobs waiting and the slots busy at now (the queue
#: settled first), or ``false`` for an unknown queue.
QUEUE_STATS = _COMMON + """
local q = load_queue(ARGV[2])
if not q then return false end
local now = tonumber(ARGV[3])
settle(q, now)
finish(q)
local busy = 0
for _, free in ipairs(q.free) do if free > now then busy = busy + 1 end end
return {redis.call('ZCARD', q.w), busy}
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
      set_times(k, string.sub(k, #P + 5), s, ARGV[2], nil)
    end
  end
end
return redis.call('HMGET', k, unpack(FIELDS))
"""

#: KEYS: a string key. ARGV: expected value, new value. Sets it only if it holds the expected
#: value (``''``: absent); answers 1 if set.
SET_IF = """
local cur = redis.call('GET', KEYS[1]) or ''
if cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"""
