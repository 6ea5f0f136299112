//! The one-shot commands a device carries out for the fault switches (a malformed
//! payload, an unknown command pair, out-of-range values), stop/start and ignoring sets.

use std::sync::atomic::Ordering;

use catalog::Channel;
use protocol::dispatch::MappedReport;
use protocol::{FrameSpec, Value};
use tracing::warn;

use super::Device;
use crate::faults::DeviceCommand;

impl Device {
    /// Carries out a command; true when the device (re)starts and should report at once.
    pub(super) async fn command(&mut self, cmd: DeviceCommand) -> bool {
        let topic = protocol::topics::property_topic(self.sn());
        match cmd {
            DeviceCommand::Malformed => {
                // Field 1 claims 32 bytes but only 2 follow: not a valid `Frames` message.
                self.send(topic, vec![0x0a, 0x20, 0x01, 0x02], 0).await;
            }
            DeviceCommand::UnknownCmdPair => {
                let seq = self.next_seq();
                let frame = FrameSpec {
                    cmd_func: 200,
                    cmd_id: 201,
                    pdata: vec![0x08, 0x01],
                    device_sn: Some(self.sn().to_string()),
                    seq,
                    src: 2,
                    xor: self.xor,
                };
                self.send(topic, protocol::encode_frames(vec![frame]), 1)
                    .await;
            }
            DeviceCommand::OutOfRange => {
                let states: Vec<_> = [("bpSoc", 150.0), ("meterAVoltage", 257.5)]
                    .into_iter()
                    .filter_map(|(name, v)| {
                        catalog::find(Channel::EmsHeartbeatReport, name)
                            .map(|s| (s, Value::Number(v)))
                    })
                    .collect();
                match protocol::encode_report(Channel::EmsHeartbeatReport, &states) {
                    Ok(pdata) => {
                        let seq = self.next_seq();
                        let frame = FrameSpec::report(
                            MappedReport::EmsHeartbeat,
                            pdata,
                            self.sn(),
                            seq,
                            self.xor,
                        );
                        self.send(topic, protocol::encode_frames(vec![frame]), 1)
                            .await;
                    }
                    Err(e) => warn!("out-of-range fault: {e}"),
                }
            }
            DeviceCommand::Stop => {
                if self.running {
                    self.go_offline().await;
                }
            }
            DeviceCommand::IgnoreSets(ignore) => self.set_ignoring(ignore),
            DeviceCommand::Start => {
                if !self.running {
                    self.running = true;
                    self.view.shared.online.store(true, Ordering::Relaxed);
                    self.publish_status(true).await;
                    return true;
                }
            }
        }
        false
    }
}
