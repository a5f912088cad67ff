-- Reads dead letters with their operator state.
-- KEYS[1] dead-letter stream, KEYS[2] state (hash: dead-letter id -> JSON {retried_at,
-- retry_stream_id, resolved_at, resolved_by, note}).
-- ARGV[1] '1' newest first (XREVRANGE from ARGV[2] down to ARGV[3]) or '0' (XRANGE from
-- ARGV[2] to ARGV[3]), ARGV[4] count.
-- Returns a list of {id, state JSON or '', field, value, ...}.
local rows
if ARGV[1] == '1' then
  rows = redis.call('XREVRANGE', KEYS[1], ARGV[2], ARGV[3], 'COUNT', ARGV[4])
else
  rows = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[3], 'COUNT', ARGV[4])
end
local out = {}
for _, e in ipairs(rows) do
  local row = {e[1], redis.call('HGET', KEYS[2], e[1]) or ''}
  for _, v in ipairs(e[2]) do row[#row + 1] = v end
  out[#out + 1] = row
end
return out
