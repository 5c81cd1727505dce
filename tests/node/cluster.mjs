// ioredis against fjord: `node cluster.mjs HOST:PORT[,HOST:PORT...] STANDALONE_HOST:PORT`.
// Started by tests/tests/ioredis.rs with a test cluster's listeners; exits non-zero on the first
// failed check and prints what it saw.
import assert from "node:assert/strict";
import Redis from "ioredis";

const [nodesArg, standaloneArg] = process.argv.slice(2);
const addr = (s) => {
  const [host, port] = s.split(":");
  return { host, port: Number(port) };
};
const startup = nodesArg.split(",").map(addr);

async function main() {
  const cluster = new Redis.Cluster(startup, { enableReadyCheck: true, maxRedirections: 0 });
  // ioredis becomes ready only after CLUSTER SLOTS and INFO's loading:0 on the nodes.
  await new Promise((resolve, reject) => {
    cluster.once("ready", resolve);
    cluster.once("error", reject);
    setTimeout(() => reject(new Error("ioredis never became ready")), 15000).unref();
  });
  const masters = cluster.nodes("master");
  assert.equal(masters.length, startup.length, "every advertised master is known");

  // Keys across slots and nodes; binary values of every byte.
  const binary = Buffer.from([...Array(256).keys()]);
  for (let i = 0; i < 100; i++) await cluster.set(`key:${i}`, `value:${i}`);
  await cluster.set(Buffer.from("bin\x00key"), binary);
  assert.deepEqual(await cluster.getBuffer(Buffer.from("bin\x00key")), binary);
  assert.equal(await cluster.get("key:42"), "value:42");

  // A cross-slot MGET is one command (Redis Cluster would answer CROSSSLOT).
  const keys = [0, 17, 33, 58, 99, 1000].map((i) => `key:${i}`);
  assert.deepEqual(await cluster.mget(...keys), ["value:0", "value:17", "value:33", "value:58", "value:99", null]);
  assert.equal(await cluster.del("key:0", "key:17", "nope"), 2);
  assert.equal(await cluster.exists("key:0", "key:33", "key:58"), 2);

  // Pipelines must keep to one slot group in ioredis; hash tags do that.
  const replies = await cluster.pipeline().set("{p}a", "1").incr("{p}n").incr("{p}n").mget("{p}a", "{p}n").exec();
  assert.deepEqual(replies.map(([err, v]) => [err, v]), [[null, "OK"], [null, 1], [null, 2], [null, ["1", "2"]]]);

  // TTLs and errors.
  await cluster.set("ttl", "x", "EX", 100);
  const ttl = await cluster.ttl("ttl");
  assert.ok(ttl > 90 && ttl <= 100, `ttl ${ttl}`);
  await assert.rejects(cluster.incr("key:42"), /ERR value is not an integer or out of range/);

  // Node-scoped commands add up across the masters, as cluster clients do.
  let dbsize = 0;
  const seen = new Set();
  for (const node of masters) {
    dbsize += await node.dbsize();
    let cursor = "0";
    do {
      const [next, batch] = await node.scan(cursor, "COUNT", 50);
      for (const k of batch) {
        assert.ok(!seen.has(k), `SCAN returned ${k} twice`);
        seen.add(k);
      }
      cursor = next;
    } while (cursor !== "0");
  }
  // 100 keys - 2 deleted + binary + {p}a + {p}n + ttl
  assert.equal(dbsize, 102);
  assert.equal(seen.size, 102);

  const info = await cluster.cluster("INFO");
  assert.match(info, /cluster_state:ok/);

  // A plain client on the standalone listener sees the whole cluster.
  const plain = new Redis(addr(standaloneArg));
  assert.equal(await plain.dbsize(), 102);
  assert.deepEqual(await plain.mget("key:1", "key:2", "{p}a"), ["value:1", "value:2", "1"]);
  plain.disconnect();

  // The data types, as an application uses them through ioredis's cluster client.
  assert.equal(await cluster.hset("user:1", { name: "ada", visits: "1" }), 2);
  assert.equal(await cluster.hincrby("user:1", "visits", 2), 3);
  assert.deepEqual(await cluster.hgetall("user:1"), { name: "ada", visits: "3" });
  assert.equal(await cluster.rpush("{q}jobs", "a", "b", "c"), 3);
  assert.equal(await cluster.lmove("{q}jobs", "{q}done", "LEFT", "RIGHT"), "a");
  assert.deepEqual(await cluster.lrange("{q}jobs", 0, -1), ["b", "c"]);
  assert.equal(await cluster.sadd("{t}a", "x", "y"), 2);
  assert.equal(await cluster.sadd("{t}b", "y", "z"), 2);
  assert.deepEqual(await cluster.sinter("{t}a", "{t}b"), ["y"]);
  assert.equal(await cluster.zadd("board", 10, "ann", 30, "bob"), 2);
  assert.deepEqual(await cluster.zrevrange("board", 0, -1, "WITHSCORES"), ["bob", "30", "ann", "10"]);
  assert.equal(await cluster.pfadd("visits", "u1", "u2", "u3", "u2"), 1);
  assert.equal(await cluster.pfcount("visits"), 3);
  assert.equal(await cluster.geoadd("shops", 13.361389, 38.115556, "palermo", 15.087269, 37.502669, "catania"), 2);
  assert.equal(await cluster.geodist("shops", "palermo", "catania", "km"), "166.2742");
  assert.deepEqual(
    await cluster.geosearch("shops", "FROMLONLAT", 15, 37, "BYRADIUS", 200, "km", "ASC", "WITHDIST"),
    [["catania", "56.4413"], ["palermo", "190.4424"]],
  );
  assert.deepEqual(await cluster.geopos("shops", "palermo", "nowhere"), [["13.36138933897018433", "38.11555639549629859"], null]);
  await assert.rejects(cluster.lpush("user:1", "x"), /WRONGTYPE/);
  cluster.disconnect();

  // scaleReads: "slave" sends reads to the advertised replicas (the replica listeners).
  const scaled = new Redis.Cluster(startup, { scaleReads: "slave", maxRedirections: 0 });
  await new Promise((resolve, reject) => {
    scaled.once("ready", resolve);
    scaled.once("error", reject);
    setTimeout(() => reject(new Error("ioredis (scaleReads) never became ready")), 15000).unref();
  });
  assert.equal(scaled.nodes("slave").length, startup.length, "every master's replica is known");
  for (let i = 0; i < 50; i++) await scaled.set(`scaled:${i}`, `${i}`);
  for (let i = 0; i < 50; i++) assert.equal(await scaled.get(`scaled:${i}`), `${i}`);
  scaled.disconnect();
  console.log(`ioredis checks passed: ${masters.length} masters, ${dbsize} keys`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
