//! Is an MQTT payload the energy-stream switch of protocol §8? A `Frames` with exactly
//! one header: `pdata` = `EnergyStreamSwitch { ems_open_energy_stream: true }` (bytes
//! `08 01`), `src=32, dest=96, d_src=1, d_dest=1, cmd_func=96, cmd_id=97,
//! data_len=len(pdata), need_ack=1, seq` present, `version=3, payload_ver=1`. Anything
//! else (another value, a missing or different header field, two headers) is not a valid
//! switch: the real device ignores it, so the simulator does too.

use prost::Message;
use protocol::pb::{Frames, Header};

/// The switch's `pdata`: field 1 (varint) = true.
pub const SWITCH_ON_PDATA: [u8; 2] = [0x08, 0x01];

/// What a payload on a device's `set` topic is, as far as the stream is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetFrame {
    /// The exact §8 switch.
    StreamOn,
    /// A 96/97 frame that is not the exact switch (counted as an invalid switch).
    BadSwitch,
    /// Something else (another set command, garbage).
    Other,
}

/// Classifies one payload published on `/app/<userId>/<SN>/thing/property/set`.
pub fn classify(payload: &[u8]) -> SetFrame {
    let Ok(frames) = Frames::decode(payload) else {
        return SetFrame::Other;
    };
    let is_switch = |h: &Header| h.cmd_func == Some(96) && h.cmd_id == Some(97);
    if !frames.header.iter().any(is_switch) {
        return SetFrame::Other;
    }
    match frames.header.as_slice() {
        [h] if is_exact(h) => SetFrame::StreamOn,
        _ => SetFrame::BadSwitch,
    }
}

fn is_exact(h: &Header) -> bool {
    let pdata = h.pdata.as_deref().unwrap_or_default();
    pdata == SWITCH_ON_PDATA
        && h.src == Some(32)
        && h.dest == Some(96)
        && h.d_src == Some(1)
        && h.d_dest == Some(1)
        && h.cmd_func == Some(96)
        && h.cmd_id == Some(97)
        && h.data_len == Some(SWITCH_ON_PDATA.len() as i32)
        && h.need_ack == Some(1)
        && h.seq.is_some()
        && h.version == Some(3)
        && h.payload_ver == Some(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The §8 switch, field by field.
    fn exact() -> Header {
        Header {
            pdata: Some(SWITCH_ON_PDATA.to_vec()),
            src: Some(32),
            dest: Some(96),
            d_src: Some(1),
            d_dest: Some(1),
            cmd_func: Some(96),
            cmd_id: Some(97),
            data_len: Some(2),
            need_ack: Some(1),
            seq: Some(0x1234_5678),
            version: Some(3),
            payload_ver: Some(1),
            ..Header::default()
        }
    }

    fn encode(headers: Vec<Header>) -> Vec<u8> {
        Frames { header: headers }.encode_to_vec()
    }

    #[test]
    fn only_the_exact_frame_switches_the_stream_on() {
        assert_eq!(classify(&encode(vec![exact()])), SetFrame::StreamOn);
        // Extra envelope fields of §10 (check_type, from, device_sn) do no harm.
        let with_extras = Header {
            check_type: Some(3),
            from: Some("ios".into()),
            device_sn: Some("HC31".into()),
            ..exact()
        };
        assert_eq!(classify(&encode(vec![with_extras])), SetFrame::StreamOn);
        let changes: [fn(&mut Header); 12] = [
            |h| h.pdata = Some(vec![0x08, 0x00]),
            |h| h.pdata = None,
            |h| h.src = Some(2),
            |h| h.dest = Some(32),
            |h| h.d_src = None,
            |h| h.d_dest = Some(2),
            |h| h.data_len = Some(3),
            |h| h.need_ack = Some(0),
            |h| h.seq = None,
            |h| h.version = Some(2),
            |h| h.payload_ver = None,
            |h| h.data_len = None,
        ];
        for (i, change) in changes.into_iter().enumerate() {
            let mut h = exact();
            change(&mut h);
            assert_eq!(
                classify(&encode(vec![h])),
                SetFrame::BadSwitch,
                "change {i}"
            );
        }
        assert_eq!(
            classify(&encode(vec![exact(), exact()])),
            SetFrame::BadSwitch
        );
    }

    #[test]
    fn other_commands_and_garbage_are_not_switches() {
        let work_mode = Header {
            cmd_id: Some(98),
            ..exact()
        };
        assert_eq!(classify(&encode(vec![work_mode])), SetFrame::Other);
        assert_eq!(classify(&[0x0a, 0x20, 0x01]), SetFrame::Other);
        assert_eq!(classify(b""), SetFrame::Other);
    }
}
