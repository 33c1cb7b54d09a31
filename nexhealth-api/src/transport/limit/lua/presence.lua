
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local silent_after, expiry = tonumber(ARGV[3]), tonumber(ARGV[4])
for _, r in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - expiry)) do
  redis.call('HDEL', KEYS[3], r)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - expiry)
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], expiry)
redis.call('PEXPIRE', KEYS[3], expiry)
local reserved = 0
for _, r in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. (now - silent_after))) do
  reserved = reserved + (tonumber(redis.call('HGET', KEYS[3], r)) or 1000000)
end
reserved = math.min(reserved, 1000000)
local replicas = redis.call('ZCARD', KEYS[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60000)
local counts = {
  redis.call('ZCOUNT', KEYS[1], '(' .. (now - 1000), '+inf'),
  redis.call('ZCOUNT', KEYS[1], '(' .. (now - 60000), '+inf'),
}
local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
local ahead = 0
if newest[2] then ahead = math.max(0, tonumber(newest[2]) - now) end
