//! Finding a Sentinel-managed primary.
//!
//! The Sentinels are asked in turn, each over a connection of its own that lasts one
//! question: they are asked when the store is first used and each time it has failed,
//! never on the request path. Whether the server they name still is the primary is left
//! to the calls themselves: a demoted primary refuses the script's write (`READONLY`),
//! which marks the store down, and the probe asks the Sentinels again.

use std::time::Duration;

use redis::{AsyncConnectionConfig, Client, ErrorKind, RedisError, RedisResult};

/// The Sentinels of one store and the name they monitor its primary under.
pub(super) struct Sentinels {
    master: String,
    sentinels: Vec<Client>,
}

impl Sentinels {
    pub(super) fn new(master: String, sentinels: Vec<Client>) -> Sentinels {
        Sentinels { master, sentinels }
    }

    /// The primary's host and port, from the first Sentinel that knows it.
    pub(super) async fn primary(&self, timeout: Duration) -> RedisResult<(String, u16)> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        let mut failure = RedisError::from((ErrorKind::Client, "no Sentinel configured"));
        for sentinel in &self.sentinels {
            let asked = async {
                let mut conn = sentinel
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                redis::cmd("SENTINEL")
                    .arg("GET-MASTER-ADDR-BY-NAME")
                    .arg(&self.master)
                    .query_async::<Option<(String, u16)>>(&mut conn)
                    .await
            };
            match asked.await {
                Ok(Some(primary)) => return Ok(primary),
                Ok(None) => {
                    failure = RedisError::from((
                        ErrorKind::Client,
                        "the Sentinel monitors no primary of that name",
                        self.master.clone(),
                    ));
                }
                Err(e) => failure = e,
            }
        }
        Err(failure)
    }
}
