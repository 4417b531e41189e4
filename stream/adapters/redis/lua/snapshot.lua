-- Store a model snapshot if it is not the current one. KEYS[1] current id, KEYS[2] current snapshot.
-- ARGV[1] id, ARGV[2] snapshot JSON. Returns 1 when it changed (the caller publishes it), else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
return 1
