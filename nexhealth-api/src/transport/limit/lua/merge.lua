
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local withdraw = tonumber(ARGV[1])
for i = 2, withdraw + 1 do
  redis.call('ZREM', KEYS[1], ARGV[i])
end
for i = withdraw + 2, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], 'NX', now - tonumber(ARGV[i]), ARGV[i + 1])
end
redis.call('PEXPIRE', KEYS[1], 62000)
return 0
