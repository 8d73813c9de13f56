//! The transfer of an update's payload: MQTT chunk windows (or HTTPS ranges, with MQTT taking
//! over on the first HTTPS failure), in-order writes into the secure services through the
//! gate, progress reports every 10 %.

use super::*;

impl Updater {
    pub(super) async fn start_transfer(
        &mut self,
        conn: &mut MqttConnection,
    ) -> Result<Next, AgentError> {
        let Some(d) = self.active.as_ref() else {
            return Ok(Next::Continue);
        };
        if d.https && self.http.is_none() {
            match RangeClient::new(&self.ca_pem) {
                Ok(c) => self.http = Some(c),
                Err(e) => return self.https_failed(conn, &e.to_string()).await,
            }
        }
        if !d.https {
            self.request_more(conn).await?;
        }
        Ok(Next::Continue)
    }

    pub(super) async fn https_failed(
        &mut self,
        conn: &mut MqttConnection,
        why: &str,
    ) -> Result<Next, AgentError> {
        if let Some(d) = self.active.as_mut() {
            d.https = false;
            d.requested = d.written;
            d.last_progress = Instant::now();
            (self.log)(&format!(
                "update: HTTPS download failed ({why}); continuing over MQTT from byte {}",
                d.written
            ));
        }
        self.request_more(conn).await?;
        Ok(Next::Continue)
    }

    /// Keeps `WINDOW` fetches in flight.
    pub(super) async fn request_more(
        &mut self,
        conn: &mut MqttConnection,
    ) -> Result<(), AgentError> {
        let topic = format!("dev/{}/up/update/fetch", self.device_id);
        let Some(d) = self.active.as_mut() else {
            return Ok(());
        };
        let chunk = u64::from(d.offer.chunk_size.max(1));
        while d.requested < d.size && d.requested < d.written + WINDOW * chunk {
            let length = chunk.min(d.size - d.requested);
            let fetch = Fetch {
                release_id: d.offer.release_id.clone(),
                offset: d.requested,
                length: length as u32,
            };
            let body = serde_json::to_vec(&fetch).map_err(|e| AgentError::protocol("fetch", e))?;
            conn.publish(&Message::qos1(topic.clone(), body)).await?;
            d.requested += length;
        }
        Ok(())
    }

    pub(super) async fn on_chunk(
        &mut self,
        conn: &mut MqttConnection,
        world: &impl UpdateDevice,
        release: &str,
        payload: &[u8],
    ) -> Result<Next, AgentError> {
        let Some(d) = self.active.as_mut() else {
            return Ok(Next::Continue);
        };
        let Some((offset, bytes)) = protocol::decode_chunk(payload) else {
            return Ok(Next::Continue);
        };
        if release != d.offer.release_id || bytes.is_empty() || offset < d.written {
            return Ok(Next::Continue); // another release, the end marker, or a duplicate
        }
        if offset > d.written {
            if d.ahead.len() < WINDOW as usize {
                d.ahead.insert(offset, bytes.to_vec());
            }
            return Ok(Next::Continue);
        }
        self.accept_bytes(conn, world, offset, bytes.to_vec()).await
    }

    /// Hands bytes at the download's offset to the secure services, then what arrived ahead.
    pub(super) async fn accept_bytes(
        &mut self,
        conn: &mut MqttConnection,
        world: &impl UpdateDevice,
        offset: u64,
        bytes: Vec<u8>,
    ) -> Result<Next, AgentError> {
        let mut next = Some((offset, bytes));
        while let Some((at, data)) = next.take() {
            match world.write(at, &data)? {
                Ok(received) => {
                    let Some(d) = self.active.as_mut() else {
                        return Ok(Next::Continue);
                    };
                    d.written = u64::from(received);
                    d.last_progress = Instant::now();
                    next = d.ahead.remove(&d.written).map(|b| (d.written, b));
                    d.ahead.retain(|k, _| *k > d.written);
                }
                Err(e) => {
                    self.fail(conn, world, &reason(&e)).await?;
                    return Ok(Next::Continue);
                }
            }
        }
        let Some(d) = self.active.as_mut() else {
            return Ok(Next::Continue);
        };
        let (written, size) = (d.written, d.size);
        let decile = written * 10 / size.max(1);
        if decile > d.decile && written < size {
            d.decile = decile;
            let (c, r) = (d.offer.campaign_id.clone(), d.offer.release_id.clone());
            self.report(conn, &c, &r, State::Downloading, written, None)
                .await?;
        }
        if written >= size {
            return self.finish(conn, world).await;
        }
        if !self.active.as_ref().is_some_and(|d| d.https) {
            self.request_more(conn).await?;
        }
        Ok(Next::Continue)
    }
}
