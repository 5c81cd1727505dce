"""redis-py-cluster 2.1.3 (the pre-4.0 cluster client) with default options."""

from rediscluster import RedisCluster


def test_starts_and_serves_with_default_options(cluster):
    rc = RedisCluster(startup_nodes=[{"host": cluster.host, "port": str(cluster.port)}])
    rc.flushall()
    assert rc.set("foo", "bar")
    assert rc.get("foo") == b"bar"
    mapping = {f"k{i}": str(i) for i in range(100)}
    assert rc.mset(mapping)
    assert rc.mget(list(mapping)) == [v.encode() for v in mapping.values()]
    # DBSIZE goes to every node, replicas included (each holds its master's keys, as in a
    # Redis Cluster with replicas): the masters' counts add up to the keys.
    sizes = rc.dbsize()
    assert sum(n for node, n in sizes.items() if node in cluster.nodes) == 101
    assert sum(n for node, n in sizes.items() if node in cluster.replica_nodes) == 101
    assert sorted(rc.keys()) == sorted([k.encode() for k in mapping] + [b"foo"])
    assert rc.delete(*mapping) == 100
    pipe = rc.pipeline()
    for i in range(50):
        pipe.set(f"p{i}", i)
    assert pipe.execute() == [True] * 50
    assert rc.get("p49") == b"49"
    assert rc.set("t", "v", ex=60) and 58 <= rc.ttl("t") <= 60
    rc.set(b"\x00\xff", b"\x01\xfe")
    assert rc.get(b"\x00\xff") == b"\x01\xfe"


def test_the_data_types(cluster):
    rc = RedisCluster(startup_nodes=[{"host": cluster.host, "port": str(cluster.port)}])
    assert rc.hset("user:1", "name", "ada") == 1
    assert rc.hincrby("user:1", "visits", 2) == 2
    assert rc.hgetall("user:1") == {b"name": b"ada", b"visits": b"2"}
    assert rc.rpush("{q}jobs", "a", "b", "c") == 3
    assert rc.rpoplpush("{q}jobs", "{q}done") == b"c"
    assert rc.lrange("{q}jobs", 0, -1) == [b"a", b"b"]
    assert rc.sadd("{t}a", "x", "y") == 2
    assert rc.sadd("{t}b", "y", "z") == 2
    assert rc.sinter("{t}a", "{t}b") == {b"y"}
    assert rc.zadd("board", {"ann": 10, "bob": 30}) == 2
    assert rc.zrevrange("board", 0, -1, withscores=True) == [(b"bob", 30.0), (b"ann", 10.0)]
    assert rc.pfadd("visits", "u1", "u2", "u3", "u2") == 1
    assert rc.pfcount("visits") == 3
    assert rc.geoadd("shops", 13.361389, 38.115556, "palermo", 15.087269, 37.502669, "catania") == 2
    assert rc.geodist("shops", "palermo", "catania", unit="km") == 166.2742
    assert rc.georadius("shops", 15, 37, 200, unit="km", withdist=True, sort="ASC") == [
        [b"catania", 56.4413],
        [b"palermo", 190.4424],
    ]
