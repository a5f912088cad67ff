-- Shared prelude of every waiting-room script; the Rust side prepends it to each script file.
--
-- KEYS[1..5] are always the event's hash, ticket counter, waiting zset, ready zset and admitted
-- zset; every key of one event carries the hash tag {event_id}, so keys that a script derives
-- from the prefix ARGV[1] (session and heartbeat buckets) live in the same cluster slot.
-- ARGV[2] is the caller's clock in milliseconds: one injected clock for the in-memory store and
-- Redis alike is what lets tests move time and lets the property test compare the two.
--
-- Memory layout (docs/operations.md, "Sizing"): one sorted-set entry and one heartbeat slot
-- per waiting user, about 113 + 5 bytes at 10,000,000 waiting.
--   q    zset  member = the session's 8-byte digest; score = its ticket, or in the pre-queue
--              draw * TBITS + ticket with a secret draw < 0, so every draw sorts below every
--              ticket and the ticket can be read back from any score (score % TBITS)
--   h:N  heartbeat bucket N: the heartbeats (unix seconds) of BUCKET consecutive tickets, in
--              the layout the event was created with (the event hash's 'hbl', configure.lua):
--        hbl 1   string of 63 4-byte big-endian slots, ticket t at byte 4 * (t % 63), zero for
--                none (~5.2 bytes a place: 252 bytes and the string's header fill jemalloc's
--                256-byte class exactly, so a bucket is always written at its full length)
--        none    hash, field = ticket % 64, value = unix seconds (~11.1 bytes a place): events
--                created by an earlier version keep it (docs/operations.md, "Upgrading to
--                string heartbeat buckets")
--   tk   hash  session digest -> ticket of each READY or ADMITTED place only (bounded by
--              max_active): a session is in at most one of q, r and a, and has a tk entry
--              exactly while it is in r or a
-- The session is the queue's member, so "one place per session" needs no index beside the
-- queue, and a place that goes (admitted, left, expired) takes its session entry with it; a
-- bucket whose last heartbeat goes is deleted with it. Hash buckets hold 64 entries: half of the
-- lowest hash-max-listpack-entries seen in deployments (128, Redis's default), so they stay
-- listpack encoded whatever the queue's size and the layout does not depend on that setting.
local EV, SEQ, Q, R, A = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local P = ARGV[1]
local TK = P .. 'tk'
local NOW = tonumber(ARGV[2])
local NOW_S = math.floor(NOW / 1000)

-- Status codes, mirrored by queue::model::Status.
local PRE_QUEUE, WAITING, READY, ADMITTED, EXPIRED, SOLD_OUT = 0, 1, 2, 3, 4, 5
-- Tickets a heartbeat bucket holds: set by load_cfg from the event's layout (see above).
local BUCKET = 64
local HB_STR = false
local HB_SLOTS, HB_LEN = 63, 252
local ZERO4 = '\0\0\0\0'
-- A string bucket's other 62 slots when empty, made when a place first leaves: string.rep
-- builds it a byte at a time, ~13,000 instructions that a join would otherwise pay.
local HB_REST = nil
-- Tickets live below 2^30 so that draw * TBITS + ticket stays an exact double (|draw| <= 2^23).
local TBITS = 1073741824
-- Queueing methods (queue::model::QueueingMethod::code).
local FIFO, RANDOM, PASSTHROUGH, REJECT = 0, 1, 2, 3
-- The priority lane (access codes): the draw -2^23, which no pre-queue draw takes (they are in
-- [-2^23 + 1, -1]), so a priority place scores -2^53 + ticket (still exact) and sorts ahead of
-- every pre-queue draw and every ticket, in arrival order among priority places. Every score
-- below PRIO_END is a priority place.
local PRIO_SCORE = -8388608 * TBITS
local PRIO_END = PRIO_SCORE + TBITS

-- What every join of a batch repeats is made once per call: the time as a string and each
-- heartbeat bucket's key. A number handed to redis.call is formatted by Redis with '%.17g', and
-- one joined to a string by Lua with '%.14g' (glibc's floating-point printf); with the bucket's
-- field names below, this took a join batch from ~47,800 to ~42,300 instructions a join in
-- redis-server (callgrind, `fill --batch 20`; docs/benchmarks.md).
local function int(n)
  return string.format('%d', n)
end
local NOW_S_ARG = int(NOW_S)
-- The time as a string bucket's slot holds it (struct is Redis's own Lua library).
local NOW_B = struct.pack('>I4', NOW_S)

local hb_keys = {}
local function hb_key(t)
  local b = math.floor(t / BUCKET)
  local k = hb_keys[b]
  if not k then
    k = P .. 'h:' .. int(b)
    hb_keys[b] = k
  end
  return k
end

-- The field names of a hash bucket's 64 heartbeats, made on first use: one literal table
-- costs a batch less than formatting a field a join.
local hb_fields = nil
local function hb_field(t)
  if not hb_fields then
    hb_fields = {
      '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12', '13', '14', '15',
      '16', '17', '18', '19', '20', '21', '22', '23', '24', '25', '26', '27', '28', '29', '30',
      '31', '32', '33', '34', '35', '36', '37', '38', '39', '40', '41', '42', '43', '44', '45',
      '46', '47', '48', '49', '50', '51', '52', '53', '54', '55', '56', '57', '58', '59', '60',
      '61', '62', '63',
    }
  end
  return hb_fields[t % BUCKET + 1]
end

local function hb_off(t)
  return 4 * (t % BUCKET)
end

-- Slot `off` of a string bucket's contents b (false: no bucket), or nil for none.
local function hb_at(b, off)
  if (not b) or #b < off + 4 then return nil end
  local v = struct.unpack('>I4', b, off + 1)
  if v == 0 then return nil end
  return v
end

-- Writes the slots bytes s at byte off of string bucket k. A bucket that did not exist is
-- written again whole: SETRANGE creates a string just long enough for what it writes and grows
-- it later by doubling its allocation, so a bucket made slot by slot would take ~520 bytes.
local function hb_write(k, off, s)
  local len = redis.call('SETRANGE', k, off, s)
  if len < HB_LEN then
    redis.call('SET', k, redis.call('GET', k) .. string.rep('\0', HB_LEN - len))
  end
end

-- Ticket t's heartbeat (unix seconds), or nil.
local function hb_get(t)
  if HB_STR then
    local off = hb_off(t)
    return hb_at(redis.call('GETRANGE', hb_key(t), off, off + 3), 0)
  end
  return tonumber(redis.call('HGET', hb_key(t), hb_field(t)))
end

-- Ticket t's heartbeat set to now.
local function hb_put(t)
  if HB_STR then
    hb_write(hb_key(t), hb_off(t), NOW_B)
  else
    redis.call('HSET', hb_key(t), hb_field(t), NOW_S_ARG)
  end
end

-- Removes ticket t's heartbeat; with `read`, returns what it was (nil for none). The bucket
-- goes with its last heartbeat: a hash by itself, a string when the rest of it reads zero.
local function hb_del(t, read)
  local k = hb_key(t)
  if not HB_STR then
    local f, last = hb_field(t), nil
    if read then last = tonumber(redis.call('HGET', k, f)) end
    redis.call('HDEL', k, f)
    return last
  end
  local off = hb_off(t)
  local b = redis.call('GET', k)
  local last = hb_at(b, off)
  if last then
    HB_REST = HB_REST or string.rep(ZERO4, HB_SLOTS - 1)
    if #b == HB_LEN and b:sub(1, off) .. b:sub(off + 5) == HB_REST then
      redis.call('DEL', k)
    else
      redis.call('SETRANGE', k, off, ZERO4)
    end
  end
  return last
end

-- The event's configuration and flags, or nil when the event does not exist.
local function load_cfg()
  local v = redis.call('HMGET', EV, 'aps', 'max', 'attl', 'idle', 'rto', 'opens', 'stopped', 'sold',
    'rate_m', 'p_end', 'p_len', 'epoch', 'qm', 'dseq', 'hbl')
  if not v[1] then
    return nil
  end
  if v[15] == '1' then
    HB_STR, BUCKET = true, HB_SLOTS
  end
  return {
    aps = tonumber(v[1]), max = tonumber(v[2]), attl = tonumber(v[3]), idle = tonumber(v[4]),
    rto = tonumber(v[5]), opens = tonumber(v[6]), stopped = v[7] == '1', sold = v[8] == '1',
    rate_m = tonumber(v[9]) or -1, p_end = tonumber(v[10]) or 0, p_len = tonumber(v[11]) or 0,
    epoch = tonumber(v[12]) or 0, qm = tonumber(v[13]) or 0, dseq = tonumber(v[14]) or 0,
  }
end

-- A heartbeat as the idle timeout counts it. Time the queue stood still (maintenance, see
-- resume.lua) is not held against anyone: a heartbeat from before the pause ended counts as
-- that much later, at most as the pause's end. Recorded once per event (p_end, p_len), so no
-- place is rewritten when a pause ends.
local function beat(c, last)
  if last < c.p_end then
    return math.min(last + c.p_len, c.p_end)
  end
  return last
end

-- Whether a place whose heartbeat is `last` (nil: none) has been idle for the idle timeout.
local function idle(c, last)
  return (not last) or NOW_S - beat(c, last) >= c.idle
end

local function pre_queue(c)
  return c.opens ~= nil and NOW < c.opens
end

-- The departure log: every change to who is waiting ahead of whom, in order, so that a
-- WebSocket fan-out (and a status read with a position hint) can derive every position from
-- its last one without asking per user.
-- 'a<n>' = n left from the head (admission), 'r<k>' = the user at 1-based rank k left,
-- 'p<k>' = a priority place arrived at 1-based rank k (everyone from k on moved back one) and
-- 'x0' = positions moved in a way the log does not describe (the opening time changed, so
-- pre-queue draws may now sort ahead of waiting places): every reader re-reads.
-- Joins at the back are not logged: such a join never moves anyone already waiting.
local DLOG_MAX = 1024
-- Entries this script call has logged: the sequence a position read in this call is exact at
-- is the one loaded with the configuration plus these (see `log_seq`), read without a call.
local LOGGED = 0
local function log_departure(entry)
  redis.call('LPUSH', P .. 'dlog', entry)
  redis.call('LTRIM', P .. 'dlog', 0, DLOG_MAX - 1)
  redis.call('HINCRBY', EV, 'dseq', 1)
  LOGGED = LOGGED + 1
end

-- The departure log's sequence now, within this call: positions read now are exact at it.
local function log_seq(c)
  return c.dseq + LOGGED
end

-- Removes session d's waiting ticket t, whose 0-based rank is known, and its heartbeat.
local function drop_waiting(d, t, rank)
  redis.call('ZREM', Q, d)
  hb_del(t)
  log_departure('r' .. (rank + 1))
end

-- Ends session d's READY or ADMITTED place (keeps the invariant: tk only beside r or a).
local function drop_slot(d)
  redis.call('ZREM', R, d)
  redis.call('ZREM', A, d)
  redis.call('HDEL', TK, d)
end

-- Where ticket t of session d stands now: {status, position, expires_at_ms}. `score` is d's
-- score in the queue when the caller has read it already. Expiry is applied lazily here so an
-- answer never depends on whether the background sweep has run yet. A ticket that is not the
-- session's current one (it expired and the session joined again) reads as EXPIRED.
local function place(c, t, d, heartbeat, score)
  score = score or redis.call('ZSCORE', Q, d)
  if score and tonumber(score) % TBITS == t then
    local rank = redis.call('ZRANK', Q, d)
    local last = hb_get(t)
    if last then last = beat(c, last) end
    if (not last) or NOW_S - last >= c.idle then
      drop_waiting(d, t, rank)
      return {EXPIRED, 0, 0}
    end
    if c.sold then
      return {SOLD_OUT, 0, 0}
    end
    if heartbeat and last ~= NOW_S then
      hb_put(t)
      last = NOW_S
    end
    local expires = (last + c.idle) * 1000
    if pre_queue(c) then
      return {PRE_QUEUE, 0, expires}
    end
    return {WAITING, rank + 1, expires}
  end
  if score or tonumber(redis.call('HGET', TK, d)) ~= t then
    return {EXPIRED, 0, 0}
  end
  local deadline = tonumber(redis.call('ZSCORE', R, d))
  if deadline then
    if deadline <= NOW then
      drop_slot(d)
      return {EXPIRED, 0, 0}
    end
    if c.sold then
      return {SOLD_OUT, 0, 0}
    end
    return {READY, 0, deadline}
  end
  local valid_until = tonumber(redis.call('ZSCORE', A, d))
  if valid_until and valid_until > NOW then
    return {ADMITTED, 0, valid_until}
  end
  -- A lapsed admission stays until the next admission tick (or a new join of the session).
  return {EXPIRED, 0, 0}
end

-- What a client-facing reply carries besides the place: the inputs of the ETA.
-- Bits 2..3 carry the queueing method, so every reply already shaped around flags tells it.
local function flags(c)
  local f = c.qm * 4
  if c.stopped then f = f + 1 end
  if c.sold then f = f + 2 end
  return f
end

-- The token bucket (see admit.lua) refilled to NOW: tokens, tb_ts. Time only moves it forward.
local function bucket(c)
  local st = redis.call('HMGET', EV, 'tokens', 'tb_ts')
  local tokens, tb_ts = tonumber(st[1]) or 0, tonumber(st[2]) or NOW
  local cap = c.aps * 1000
  if NOW > tb_ts then
    tokens = math.min(cap, tokens + (NOW - tb_ts) * c.aps)
    tb_ts = NOW
  end
  if tokens > cap then tokens = cap end
  return tokens, tb_ts
end

-- READY and ADMITTED places that have not lapsed: what holds capacity. (The tick removes
-- lapsed ones; counting only live ones here makes a join's answer not depend on whether the
-- tick ran first.)
local function held()
  return redis.call('ZCOUNT', R, '(' .. NOW, '+inf') + redis.call('ZCOUNT', A, '(' .. NOW, '+inf')
end

local function reply(c, code, t, p)
  return {code, t, p[1], p[2], p[3], c.rate_m, c.aps, flags(c), c.opens or -1, c.epoch, log_seq(c)}
end

-- The lottery's generator: MINSTD (Park-Miller, x' = 48271 x mod 2^31 - 1), whose state `rnd` is
-- in the event hash, seeded from the epoch (random per event, configure.lua), so reproducible
-- given the epoch. Every step is an exact double (x < 2^31, so 48271 x < 2^47), so the
-- in-memory store steps it identically. One draw takes two steps and joins 31 + 21 bits: a
-- draw is uniform on [0, 2^52) up to MINSTD's quality, and draw mod N is uniform over N ranks
-- up to N / 2^52. The seed is not a secret (waiting tokens carry the epoch), only unknown
-- before the event exists: what a draw picks is a rank, and who holds which rank at that
-- moment depends on everyone's joins, leaves and expiries.
local MINSTD = 2147483647
local function random_draw(c, state)
  local x = state or (math.fmod(c.epoch, MINSTD - 1) + 1)
  x = math.fmod(x * 48271, MINSTD)
  local hi = x - 1
  x = math.fmod(x * 48271, MINSTD)
  return hi * 2097152 + math.floor((x - 1) / 1024), x
end
