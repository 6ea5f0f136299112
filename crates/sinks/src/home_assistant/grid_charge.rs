//! The scheduled grid charge in Home Assistant (protocol §12, docs/control.md), pure: a
//! `switch` (armed), a `number` (power, W in 100 W steps) and a `text` (the window,
//! `HH:MM-HH:MM`; HA has no time-range platform, and two `time` entities would make one
//! change two writes). Each shows the device's timer-task list (slot 1), never the
//! request. A command becomes a [`SetRequest`] through `protocol::grid_charge`, as from
//! the CLI and the web API: `ON` re-arms the reported task, `OFF` disarms it, a new
//! power or window rewrites it with the rest as reported, and arms it (§12: a full write
//! clears the flag; the bridge arms again). Beside the settings entities, announced
//! only while control is on.

use protocol::grid_charge::{edit, window_text};
use protocol::timer::{self, TimerTask, Window, plan::POWER_STEP_W};
use protocol::{SetError, SetRequest};
use serde_json::{Value as Json, json};

use super::discovery::{Topics, id_safe, topic_safe};
use super::settings::UNKNOWN;

/// One grid-charge entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GridChargeEntity {
    Armed,
    Power,
    Window,
}

/// What HA's text entity accepts: `HH:MM-HH:MM`.
pub const WINDOW_PATTERN: &str = "^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$";

impl GridChargeEntity {
    pub const ALL: [GridChargeEntity; 3] = [
        GridChargeEntity::Armed,
        GridChargeEntity::Power,
        GridChargeEntity::Window,
    ];

    /// The topic level and object id.
    pub const fn key(self) -> &'static str {
        match self {
            GridChargeEntity::Armed => "grid_charge_armed",
            GridChargeEntity::Power => "grid_charge_power",
            GridChargeEntity::Window => "grid_charge_window",
        }
    }

    pub fn from_key(key: &str) -> Option<GridChargeEntity> {
        GridChargeEntity::ALL.into_iter().find(|e| e.key() == key)
    }

    pub const fn component(self) -> &'static str {
        match self {
            GridChargeEntity::Armed => "switch",
            GridChargeEntity::Power => "number",
            GridChargeEntity::Window => "text",
        }
    }

    const fn name(self) -> &'static str {
        match self {
            GridChargeEntity::Armed => "Grid charge",
            GridChargeEntity::Power => "Grid charge power",
            GridChargeEntity::Window => "Grid charge window",
        }
    }

    /// The state for the device's list: `ON`/`OFF`, watts, `HH:MM-HH:MM`; [`UNKNOWN`]
    /// before the device reported its list (or a slot 1).
    pub fn state_payload(self, tasks: Option<&[TimerTask]>) -> String {
        let Some(task) = tasks.and_then(|t| timer::find(t, protocol::control::GRID_CHARGE_SLOT))
        else {
            return UNKNOWN.into();
        };
        match self {
            GridChargeEntity::Armed => if task.armed { "ON" } else { "OFF" }.into(),
            GridChargeEntity::Power => task.power_w.to_string(),
            GridChargeEntity::Window => task
                .set_windows()
                .next()
                .map_or_else(|| UNKNOWN.into(), window_text),
        }
    }

    /// The request a command means, with the rest of the task as the device reported it.
    pub fn request(self, payload: &str, tasks: &[TimerTask]) -> Result<SetRequest, SetError> {
        let text = payload.trim();
        match self {
            GridChargeEntity::Armed => match text {
                "OFF" => Ok(SetRequest::GridChargeOff),
                "ON" => edit(tasks, None, None),
                _ => Err(SetError::GridChargeValue(text.into())),
            },
            GridChargeEntity::Power => {
                let bad = || SetError::GridChargeValue(text.into());
                let w: f64 = text.parse().map_err(|_| bad())?;
                if !(w.is_finite() && w >= 0.0 && w.fract() == 0.0 && w <= f64::from(u32::MAX)) {
                    return Err(bad());
                }
                // Checked just above: finite, whole, within u32.
                edit(tasks, Some(w as u32), None)
            }
            GridChargeEntity::Window => {
                let window: Window = text.parse().map_err(SetError::GridCharge)?;
                edit(tasks, None, Some(window))
            }
        }
    }
}

impl Topics {
    /// The entity's state (`<prefix>/<SN>/settings/<key>`, beside the settings').
    pub fn grid_charge_state(&self, sn: &str, e: GridChargeEntity) -> String {
        format!("{}/{}/settings/{}", self.prefix, topic_safe(sn), e.key())
    }

    pub fn grid_charge_command(&self, sn: &str, e: GridChargeEntity) -> String {
        format!("{}/set", self.grid_charge_state(sn, e))
    }

    pub fn grid_charge_config(&self, sn: &str, e: GridChargeEntity) -> String {
        format!(
            "{}/{}/oceanbridge_{}/settings_{}/config",
            self.discovery_prefix,
            e.component(),
            id_safe(sn),
            e.key()
        )
    }

    /// `(serial as a topic level, entity)` of a grid-charge command topic, if it is one.
    pub fn parse_grid_charge_command<'t>(
        &self,
        topic: &'t str,
    ) -> Option<(&'t str, GridChargeEntity)> {
        let (sn, key) = self.settings_command(topic)?;
        Some((sn, GridChargeEntity::from_key(key)?))
    }
}

/// The discovery config of one grid-charge entity (not optimistic: the state topic
/// carries the device's list only).
pub fn config(topics: &Topics, sn: &str, e: GridChargeEntity, origin_version: &str) -> Json {
    let mut c = super::settings::common(topics, sn, origin_version);
    c.insert("name".into(), json!(e.name()));
    c.insert(
        "unique_id".into(),
        json!(format!("oceanbridge_{}_settings_{}", id_safe(sn), e.key())),
    );
    c.insert("state_topic".into(), json!(topics.grid_charge_state(sn, e)));
    c.insert(
        "command_topic".into(),
        json!(topics.grid_charge_command(sn, e)),
    );
    c.insert("entity_category".into(), json!("config"));
    c.insert("optimistic".into(), json!(false));
    c.insert("qos".into(), json!(1));
    match e {
        GridChargeEntity::Armed => {
            c.insert("icon".into(), json!("mdi:transmission-tower-import"));
        }
        GridChargeEntity::Power => {
            c.insert("min".into(), json!(POWER_STEP_W));
            // The real limit is `[control] grid_charge_max_w`, checked by the controller.
            c.insert("max".into(), json!(50_000));
            c.insert("step".into(), json!(POWER_STEP_W));
            c.insert("unit_of_measurement".into(), json!("W"));
            c.insert("device_class".into(), json!("power"));
            c.insert("mode".into(), json!("box"));
        }
        GridChargeEntity::Window => {
            c.insert("pattern".into(), json!(WINDOW_PATTERN));
            c.insert("min".into(), json!(11));
            c.insert("max".into(), json!(11));
            c.insert("icon".into(), json!("mdi:clock-time-ten-outline"));
        }
    }
    Json::Object(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::timer::{Repeat, TaskKind, TimerError};

    fn no_slot() -> SetError {
        SetError::GridCharge(TimerError::UnknownSlot { index: 1 })
    }

    fn tasks(armed: bool) -> Vec<TimerTask> {
        vec![TimerTask {
            index: 1,
            armed,
            running: false,
            kind: TaskKind::ChargeFromGrid,
            power_w: 1000,
            repeat: Repeat::Daily,
            windows: vec![Window::new(60, 300)],
            cfg: Some(2),
            role: None,
        }]
    }

    #[test]
    fn states_show_the_list_and_commands_edit_it() {
        let t = tasks(false);
        let state = |e: GridChargeEntity| e.state_payload(Some(&t));
        assert_eq!(state(GridChargeEntity::Armed), "OFF");
        assert_eq!(state(GridChargeEntity::Power), "1000");
        assert_eq!(state(GridChargeEntity::Window), "01:00-05:00");
        assert_eq!(GridChargeEntity::Power.state_payload(None), UNKNOWN);
        let window = Window::new(60, 300);
        assert_eq!(
            GridChargeEntity::Armed.request("ON", &t),
            Ok(SetRequest::GridCharge {
                power_w: 1000,
                window,
                repeat: Repeat::Daily
            })
        );
        assert_eq!(
            GridChargeEntity::Armed.request("OFF", &t),
            Ok(SetRequest::GridChargeOff)
        );
        assert_eq!(
            GridChargeEntity::Power.request("1500.0", &t),
            Ok(SetRequest::GridCharge {
                power_w: 1500,
                window,
                repeat: Repeat::Daily
            })
        );
        assert_eq!(
            GridChargeEntity::Window.request("22:00-05:30", &t),
            Ok(SetRequest::GridCharge {
                power_w: 1000,
                window: "22:00-05:30".parse().unwrap(),
                repeat: Repeat::Daily
            })
        );
        assert!(GridChargeEntity::Power.request("abc", &t).is_err());
        assert!(GridChargeEntity::Window.request("25:00-01:00", &t).is_err());
        assert_eq!(GridChargeEntity::Armed.request("ON", &[]), Err(no_slot()));
        let topics = Topics {
            discovery_prefix: "homeassistant".into(),
            prefix: "oceanbridge".into(),
        };
        let topic = topics.grid_charge_command("SN1", GridChargeEntity::Window);
        assert_eq!(
            topics.parse_grid_charge_command(&topic),
            Some(("SN1", GridChargeEntity::Window))
        );
        let c = config(&topics, "SN1", GridChargeEntity::Window, "0");
        assert_eq!(c["pattern"], WINDOW_PATTERN);
    }
}
