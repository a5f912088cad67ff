-- Marks a dead letter resolved by an operator, once.
-- KEYS[1] dead-letter stream, KEYS[2] state hash.
-- ARGV[1] dead-letter id, ARGV[2] resolved_by, ARGV[3] note ('' for none), ARGV[4] now RFC 3339.
-- Returns 'resolved', 'already' or 'missing'.
local id = ARGV[1]
if #redis.call('XRANGE', KEYS[1], id, id) == 0 then return 'missing' end
local raw = redis.call('HGET', KEYS[2], id)
local st = {}
if raw then st = cjson.decode(raw) end
if st.resolved_at then return 'already' end
st.resolved_at = ARGV[4]
st.resolved_by = ARGV[2]
if ARGV[3] ~= '' then st.note = ARGV[3] end
redis.call('HSET', KEYS[2], id, cjson.encode(st))
return 'resolved'
