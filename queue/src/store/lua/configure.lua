-- configure: ARGV[3..9] = aps, max, attl, idle, rto, opens ('' for none), target url ('' for none). Creates or updates
-- the event; flags, counters and the token bucket survive an update. Reply: {1 created | 0}.
-- ARGV[10] = join challenge difficulty bits (0: none).
-- ARGV[13] = the epoch of the event if this call creates it: random, chosen by the caller
-- (queue::store::new_epoch, below 2^53 so exact as a Lua number). Waiting tokens carry it, so
-- tokens of an earlier incarnation of the event (deleted with its data, created again) are
-- refused; it also seeds the lottery (random_draw in lib.lua). An update keeps the epoch.
local created = redis.call('EXISTS', EV) == 0
-- A new opening time may put pre-queue draws ahead of places already waiting (joins before
-- the opening sort ahead of every ticket), which the log cannot describe: 'x0' has every
-- position reader re-read.
if (not created) and (redis.call('HGET', EV, 'opens') or '') ~= ARGV[8] then
  log_departure('x0')
end
redis.call('HSET', EV, 'aps', ARGV[3], 'max', ARGV[4], 'attl', ARGV[5], 'idle', ARGV[6],
  'rto', ARGV[7], 'opens', ARGV[8], 'url', ARGV[9])
redis.call('HSET', EV, 'pow', ARGV[10] or '0')
-- ARGV[11] = queueing method code (queue::model::QueueingMethod::code); a switch is live: the
-- queue's order is kept, only how it is taken changes (join.lua, admit.lua).
redis.call('HSET', EV, 'qm', ARGV[11] or '0')
-- ARGV[12] = the waiting page's settings as JSON ('' for none).
redis.call('HSET', EV, 'page', ARGV[12] or '')
if created then
  redis.call('HSET', EV, 'stopped', 0, 'sold', 0, 'tokens', 0, 'tb_ts', NOW, 'rate_m', -1,
    'epoch', ARGV[13])
  -- Heartbeats in string buckets (lib.lua, "Memory layout"); an event created before keeps
  -- hash buckets.
  redis.call('HSET', EV, 'hbl', 1)
  return {1}
end
return {0}
