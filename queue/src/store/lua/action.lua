-- action: ARGV[3] = flag name ('stopped' | 'sold'), ARGV[4] = '0' | '1'. Reply: {1} or {-1}.
if redis.call('EXISTS', EV) == 0 then return {-1} end
redis.call('HSET', EV, ARGV[3], ARGV[4])
return {1}
