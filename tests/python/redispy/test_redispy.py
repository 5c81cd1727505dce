"""redis-py against fjord: RedisCluster on the cluster listeners, plain Redis on the
standalone listener, in RESP2 and RESP3."""

import time

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def rc(cluster, request):
    client = RedisCluster(host=cluster.host, port=cluster.port, protocol=request.param)
    client.flushall(target_nodes=RedisCluster.ALL_NODES)
    yield client
    client.close()


def test_sees_three_masters_and_routes_keys(rc, cluster):
    nodes = rc.get_primaries()
    assert sorted(f"{n.host}:{n.port}" for n in nodes) == sorted(cluster.nodes)
    assert rc.set("foo", "bar") is True
    assert rc.get("foo") == b"bar"
    assert rc.cluster_keyslot("foo") == 12182
    assert rc.get_node_from_key("foo").port == int(cluster.nodes[2].rsplit(":", 1)[1])


def test_binary_keys_and_values_of_every_byte(rc):
    for b in range(256):
        key = bytes([b]) + b"\x00\r\n" + bytes([255 - b])
        value = bytes(range(256))[b:] + bytes([b])
        assert rc.set(key, value)
        assert rc.get(key) == value
    assert rc.set(b"", b"")
    assert rc.get(b"") == b""
    big = b"\xab" * (1024 * 1024)
    assert rc.set("big", big)
    assert rc.get("big") == big
    assert rc.strlen("big") == len(big)


def test_nonatomic_multi_key_and_hash_tags(rc):
    mapping = {f"user:{i}": f"v{i}" for i in range(200)}
    assert rc.mset_nonatomic(mapping)
    keys = list(mapping) + ["missing"]
    assert rc.mget_nonatomic(keys) == [v.encode() for v in mapping.values()] + [None]
    assert rc.mset({"{u1}:a": "1", "{u1}:b": "2"})
    assert rc.mget("{u1}:a", "{u1}:b") == [b"1", b"2"]
    assert rc.delete("{u1}:a", "{u1}:b") == 2
    assert rc.exists(*list(mapping)[:50]) == 50
    assert rc.delete(*list(mapping)[:50]) == 50


def test_dbsize_keys_and_scan_iter_see_every_key_once(rc):
    names = {f"k{i}".encode() for i in range(500)}
    for n in names:
        rc.set(n, "x")
    # Each listener counts its own slots, as each master of a Redis Cluster does: redis-py asks
    # one node by default and adds up the answers of all primaries when told to.
    assert rc.dbsize() < 500
    assert rc.dbsize(target_nodes=RedisCluster.PRIMARIES) == 500
    assert set(rc.keys(target_nodes=RedisCluster.PRIMARIES)) == names
    scanned = list(rc.scan_iter(count=37))
    assert len(scanned) == 500
    assert set(scanned) == names
    assert set(rc.scan_iter(match="k1*")) == {n for n in names if n.startswith(b"k1")}


def test_ttls(rc):
    assert rc.set("t", "v", ex=100)
    assert 98 <= rc.ttl("t") <= 100
    assert rc.pexpire("t", 50_000)
    assert 48_000 <= rc.pttl("t") <= 50_000
    assert rc.persist("t")
    assert rc.ttl("t") == -1
    assert rc.set("gone", "v", px=100)
    time.sleep(0.3)
    assert rc.get("gone") is None
    assert rc.ttl("gone") == -2


def test_pipelines_across_slots(rc):
    pipe = rc.pipeline()
    for i in range(300):
        pipe.set(f"p{i}", i)
        pipe.incr(f"c{i % 7}")
    results = pipe.execute()
    assert results[0::2] == [True] * 300
    pipe = rc.pipeline()
    for i in range(300):
        pipe.get(f"p{i}")
    assert pipe.execute() == [str(i).encode() for i in range(300)]
    assert sum(int(rc.get(f"c{i}")) for i in range(7)) == 300


def test_errors_map_to_redis_py_exceptions(rc):
    rc.set("s", "abc")
    with pytest.raises(redis.ResponseError, match="not an integer"):
        rc.incr("s")
    with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
        rc.execute_command("GET", "a", "b")


def test_collections_through_the_cluster_client(rc):
    # Hashes: a user profile.
    assert rc.hset("user:1", mapping={"name": "ada", "visits": 1}) == 2
    assert rc.hincrby("user:1", "visits", 2) == 3
    assert rc.hgetall("user:1") == {b"name": b"ada", b"visits": b"3"}
    # Lists: a queue, moved between two lists of one slot.
    assert rc.rpush("{q}:jobs", *[f"job{i}" for i in range(10)]) == 10
    assert rc.lpop("{q}:jobs") == b"job0"
    assert rc.lpop("{q}:jobs", 2) == [b"job1", b"job2"]
    assert rc.lmove("{q}:jobs", "{q}:done", "LEFT", "RIGHT") == b"job3"
    assert rc.lrange("{q}:done", 0, -1) == [b"job3"]
    assert rc.lpos("{q}:jobs", "job9") == 5
    assert rc.linsert("{q}:jobs", "BEFORE", "job5", "urgent") == 7
    assert rc.lindex("{q}:jobs", 1) == b"urgent"
    assert rc.lrem("{q}:jobs", 0, "urgent") == 1
    assert rc.ltrim("{q}:jobs", 0, 1)
    assert rc.lrange("{q}:jobs", 0, -1) == [b"job4", b"job5"]
    assert rc.lpop("missing", 2) is None
    # Sets: tags.
    assert rc.sadd("{t}:a", "x", "y", "z") == 3
    assert rc.sadd("{t}:b", "y") == 1
    assert rc.sinter("{t}:a", "{t}:b") == {b"y"}
    assert rc.smembers("{t}:a") == {b"x", b"y", b"z"}
    # Sorted sets: a leaderboard.
    assert rc.zadd("board", {"ann": 10, "bob": 30, "cy": 20}) == 3
    assert rc.zincrby("board", 5, "ann") == 15.0
    # redis-py gives pairs as tuples in RESP2 and as lists in RESP3, from Redis too.
    top = [tuple(p) for p in rc.zrevrange("board", 0, 1, withscores=True)]
    assert top == [(b"bob", 30.0), (b"cy", 20.0)]
    assert rc.zscore("board", "cy") == 20.0
    # SORT, its weights on other shards (allowed by fjord, refused by Redis Cluster).
    rc.rpush("ids", 3, 1, 2)
    rc.mset_nonatomic({"weight_1": 30, "weight_2": 10, "weight_3": 20})
    assert rc.sort("ids") == [b"1", b"2", b"3"]
    assert rc.sort("ids", by="weight_*", get=["#", "weight_*"]) == [
        b"2", b"10", b"3", b"20", b"1", b"30"
    ]
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        rc.lpush("user:1", "x")
    # HyperLogLog: unique visitors per day, merged into a week.
    assert rc.pfadd("{v}:mon", *[f"user{i}" for i in range(1000)]) == 1
    assert rc.pfadd("{v}:tue", *[f"user{i}" for i in range(500, 1500)]) == 1
    assert abs(rc.pfcount("{v}:mon") - 1000) < 30
    assert rc.pfmerge("{v}:week", "{v}:mon", "{v}:tue")
    assert abs(rc.pfcount("{v}:week") - 1500) < 45
    assert rc.pfcount("{v}:mon", "{v}:tue") == rc.pfcount("{v}:week")
    # Geo: shops near a point.
    shops = [13.361389, 38.115556, "palermo", 15.087269, 37.502669, "catania"]
    assert rc.geoadd("{g}:shops", shops) == 2
    assert rc.geodist("{g}:shops", "palermo", "catania", unit="km") == 166.2742
    near = rc.geosearch(
        "{g}:shops", longitude=15, latitude=37, radius=200, unit="km", sort="ASC", withdist=True
    )
    assert [tuple(p) for p in near] == [(b"catania", 56.4413), (b"palermo", 190.4424)]
    assert rc.geosearchstore(
        "{g}:near", "{g}:shops", longitude=15, latitude=37, radius=100, unit="km"
    ) == 1
    assert rc.zrange("{g}:near", 0, -1) == [b"catania"]
    (lon, lat), missing = rc.geopos("{g}:shops", "palermo", "nowhere")
    assert abs(lon - 13.361389) < 1e-5 and abs(lat - 38.115556) < 1e-5 and missing is None
    # redis-py decodes GEOHASH's strings in RESP2 only, from Redis too.
    (geohash,) = rc.geohash("{g}:shops", "palermo")
    assert geohash in ("sqc8b49rny0", b"sqc8b49rny0")


def test_standalone_listener_with_a_plain_client(cluster):
    host, port = cluster.standalone.rsplit(":", 1)
    for protocol in (2, 3):
        r = redis.Redis(host=host, port=int(port), protocol=protocol)
        r.flushall()
        assert r.mset({f"x{i}": i for i in range(100)})
        assert r.mget([f"x{i}" for i in range(100)]) == [str(i).encode() for i in range(100)]
        assert r.dbsize() == 100
        assert r.delete(*[f"x{i}" for i in range(50)]) == 50
        assert r.dbsize() == 50
        assert len(list(r.scan_iter(count=10))) == 50
        assert r.info()["loading"] == 0
        # PFCOUNT of keys in different slots, as one Redis answers it.
        assert r.pfadd("hll-a", *range(100)) == 1
        assert r.pfadd("hll-b", *range(50, 150)) == 1
        assert abs(r.pfcount("hll-a", "hll-b") - 150) < 5
        with r.pipeline(transaction=False) as p:
            for i in range(50, 100):
                p.get(f"x{i}")
            assert p.execute() == [str(i).encode() for i in range(50, 100)]
        r.close()


def test_transactions_get_a_clear_error(cluster):
    host, port = cluster.standalone.rsplit(":", 1)
    r = redis.Redis(host=host, port=int(port))
    with pytest.raises(redis.ResponseError, match="not supported by fjord"):
        r.execute_command("MULTI")
    r.close()


def test_read_from_replicas_reads_from_the_replica_listeners(cluster):
    replicas = RedisCluster(host=cluster.host, port=cluster.port, read_from_replicas=True)
    try:
        assert sorted(f"{n.host}:{n.port}" for n in replicas.get_replicas()) == sorted(cluster.replica_nodes)
        for i in range(50):
            assert replicas.set(f"rr:{i}", i) is True
        for i in range(50):
            assert replicas.get(f"rr:{i}") == str(i).encode()
        assert cluster.replica_reads_served() > 0
    finally:
        replicas.close()
