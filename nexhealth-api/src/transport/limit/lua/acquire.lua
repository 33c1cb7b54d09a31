
local pause = redis.call('PTTL', KEYS[4])
if pause > 0 then return { pause, now, counts[1], counts[2], replicas, reserved, 1, ahead } end
local free = 1000000 - reserved
local limits = {
  math.floor(tonumber(ARGV[5]) * free / 1000000),
  math.floor(tonumber(ARGV[6]) * free / 1000000),
}
local windows = { 1000, 60000 }
local total = redis.call('ZCARD', KEYS[1])
local wait = 0
for i = 1, 2 do
  if limits[i] < 1 then
    wait = math.max(wait, 250)
  elseif total >= limits[i] then
    local leaving = redis.call('ZRANGE', KEYS[1], total - limits[i], total - limits[i], 'WITHSCORES')
    wait = math.max(wait, tonumber(leaving[2]) + windows[i] - now)
  end
end
if wait > 0 then return { wait, now, counts[1], counts[2], replicas, reserved, 0, ahead } end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[8]), ARGV[7])
redis.call('PEXPIRE', KEYS[1], 62000)
return { 0, now, counts[1] + 1, counts[2] + 1, replicas, reserved, 0, math.max(ahead, tonumber(ARGV[8])) }
