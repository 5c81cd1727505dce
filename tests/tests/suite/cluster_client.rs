//! The `redis` crate's async cluster client against fjord: it discovers the three advertised
//! masters from CLUSTER SLOTS, routes by slot, and gets what one Redis would answer.

use fjord_tests::Cluster;
use redis::cluster::ClusterClient;
use redis::AsyncCommands;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_crate_cluster_client_works_unchanged() {
    let cluster = Cluster::start().unwrap();
    let urls: Vec<String> = cluster
        .nodes
        .iter()
        .map(|n| format!("redis://{n}/"))
        .collect();
    let client = ClusterClient::new(urls).unwrap();
    let mut con = client.get_async_connection().await.unwrap();

    let _: () = con.set("foo", "bar").await.unwrap();
    let v: String = con.get("foo").await.unwrap();
    assert_eq!(v, "bar");
    let missing: Option<String> = con.get("nope").await.unwrap();
    assert_eq!(missing, None);

    // Every byte value in keys and values, across slots.
    for b in 0..=255u8 {
        let key = vec![b, b'\r', b'\n', 255 - b];
        let _: () = con.set(&key, vec![b; 3]).await.unwrap();
        let got: Vec<u8> = con.get(&key).await.unwrap();
        assert_eq!(got, vec![b; 3]);
    }

    // Same-slot multi-key commands, and ones the client splits per slot itself.
    let _: () = con.mset(&[("{u}a", "1"), ("{u}b", "2")]).await.unwrap();
    let both: Vec<String> = con.mget(&["{u}a", "{u}b"]).await.unwrap();
    assert_eq!(both, vec!["1", "2"]);
    let n: i64 = con.incr("counter", 5).await.unwrap();
    assert_eq!(n, 5);
    let _: () = con.expire("counter", 100).await.unwrap();
    let ttl: i64 = con.ttl("counter").await.unwrap();
    assert!((98..=100).contains(&ttl));

    // A pipeline (the crate's cluster pipelines must stay in one slot, as with Redis Cluster).
    let mut pipe = redis::pipe();
    for i in 0..100 {
        pipe.set(format!("{{p}}{i}"), i).ignore();
    }
    for i in 0..100 {
        pipe.get(format!("{{p}}{i}"));
    }
    let values: Vec<i64> = pipe.query_async(&mut con).await.unwrap();
    assert_eq!(values, (0..100).collect::<Vec<i64>>());

    let deleted: i64 = con.del(&["{u}a", "{u}b"]).await.unwrap();
    assert_eq!(deleted, 2);

    // The crate's plain client on the standalone listener: one MGET across every shard.
    let plain = redis::Client::open(format!("redis://{}/", cluster.standalone)).unwrap();
    let mut single = plain.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = (0..100)
        .map(|i| format!("{{p}}{i}"))
        .chain(["foo".into(), "nope".into()])
        .collect();
    let got: Vec<Option<String>> = single.mget(&keys).await.unwrap();
    let mut want: Vec<Option<String>> = (0..100).map(|i| Some(i.to_string())).collect();
    want.extend([Some("bar".to_string()), None]);
    assert_eq!(got, want);
}
