-- An attempt to forward an entry failed: schedule a retry, or dead-letter it.
-- KEYS[1] inbox stream, KEYS[2] retry schedule, KEYS[3] attempts, KEYS[4] dead-letter stream.
-- ARGV[1] group, ARGV[2] entry id, ARGV[3] now (ms), ARGV[4] max attempts, ARGV[5] delay (ms,
-- with jitter, chosen by the caller), ARGV[6] error text, ARGV[7] '1' when the failure is
-- permanent (retrying cannot help), ARGV[8] now as RFC 3339.
-- Returns {'retry', attempts}, {'dead', dead-letter id} or {'gone', attempts}.
local id = ARGV[2]
local n = redis.call('HINCRBY', KEYS[3], id, 1)
if ARGV[7] == '1' or n >= tonumber(ARGV[4]) then
  local e = redis.call('XRANGE', KEYS[1], id, id)
  if #e == 0 then
    -- Another consumer forwarded it meanwhile and deleted it: nothing to dead-letter.
    redis.call('HDEL', KEYS[3], id)
    redis.call('ZREM', KEYS[2], id)
    return {'gone', n}
  end
  local meta = {attempts = true, last_error = true, failed_at = true, stream_id = true}
  local copy = fields_without(e[1][2], meta)
  for _, v in ipairs({'attempts', tostring(n), 'last_error', ARGV[6], 'failed_at', ARGV[8], 'stream_id', id}) do
    copy[#copy + 1] = v
  end
  -- Moving to the dead-letter stream and leaving the inbox are one step: the entry is never in
  -- both, and never in neither.
  local dlq = redis.call('XADD', KEYS[4], '*', unpack(copy))
  redis.call('XACK', KEYS[1], ARGV[1], id)
  redis.call('XDEL', KEYS[1], id)
  redis.call('HDEL', KEYS[3], id)
  redis.call('ZREM', KEYS[2], id)
  return {'dead', dlq}
end
-- Stays pending (unacknowledged) with this consumer until the schedule hands it out again.
redis.call('ZADD', KEYS[2], tonumber(ARGV[3]) + tonumber(ARGV[5]), id)
return {'retry', n}
