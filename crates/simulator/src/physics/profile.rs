//! The weather and the household: a deterministic noise source, the PV day curve with
//! drifting clouds, and a household load with a daily rhythm, noise and appliance spikes.

/// A small deterministic generator (SplitMix64): the same seed gives the same day.
#[derive(Debug, Clone)]
pub struct Noise {
    state: u64,
}

impl Noise {
    pub fn new(seed: u64) -> Noise {
        Noise {
            state: seed ^ 0x9E37_79B9_7F4A_7C15,
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn gauss(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-12);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// Clear-sky PV output as a fraction of peak at local `hour` on `day_of_year` (0 = 1 January,
/// northern mid-latitudes): days run 16 h at midsummer and 8 h at midwinter, centred on
/// 13:00, and the winter sun gives half the summer peak.
pub fn clear_sky(hour: f64, day_of_year: f64) -> f64 {
    let season = (2.0 * std::f64::consts::PI * (day_of_year - 172.0) / 365.25).cos();
    let day_length = 12.0 + 4.0 * season;
    let sunrise = 13.0 - day_length / 2.0;
    if hour <= sunrise || hour >= sunrise + day_length {
        return 0.0;
    }
    let x = (hour - sunrise) / day_length;
    (0.75 + 0.25 * season) * (std::f64::consts::PI * x).sin().powf(1.5)
}

/// Cloud cover as a transmission factor in [0.2, 1], drifting as a mean-reverting walk.
#[derive(Debug, Clone)]
pub struct Clouds {
    pub factor: f64,
}

impl Clouds {
    pub fn step(&mut self, dt: f64, noise: &mut Noise) {
        const MEAN: f64 = 0.8;
        const TAU: f64 = 1800.0;
        let pull = (MEAN - self.factor) * (dt / TAU).min(1.0);
        let kick = 0.02 * noise.gauss() * (dt / 60.0).sqrt().min(3.0);
        self.factor = (self.factor + pull + kick).clamp(0.2, 1.0);
    }
}

/// One running appliance.
#[derive(Debug, Clone)]
struct Appliance {
    watts: f64,
    remaining_s: f64,
}

/// The household: base load with morning/noon/evening peaks, a cycling fridge, noise,
/// and appliances switching on at random (kettle, microwave, washer, oven).
#[derive(Debug, Clone, Default)]
pub struct Household {
    running: Vec<Appliance>,
}

/// (watts, minutes) of the appliances that cause spikes.
const APPLIANCES: [(f64, f64); 4] = [(2200.0, 3.0), (1200.0, 4.0), (2000.0, 25.0), (2800.0, 40.0)];

impl Household {
    /// Advances the appliances by `dt` seconds and returns the load in W at local `hour`.
    pub fn step(&mut self, hour: f64, dt: f64, noise: &mut Noise) -> f64 {
        for a in &mut self.running {
            a.remaining_s -= dt;
        }
        self.running.retain(|a| a.remaining_s > 0.0);
        let awake = (6.5..23.0).contains(&hour);
        let per_hour = if awake { 2.5 } else { 0.2 };
        if self.running.len() < 3 && noise.uniform() < per_hour * dt / 3600.0 {
            let pick = (noise.uniform() * APPLIANCES.len() as f64) as usize;
            let (watts, minutes) = APPLIANCES[pick.min(APPLIANCES.len() - 1)];
            self.running.push(Appliance {
                watts,
                remaining_s: minutes * 60.0,
            });
        }
        let bump = |centre: f64, width: f64, height: f64| {
            height * (-((hour - centre) / width).powi(2)).exp()
        };
        let rhythm =
            280.0 + bump(7.5, 0.8, 550.0) + bump(12.5, 0.7, 350.0) + bump(19.5, 1.5, 850.0);
        // The fridge compressor: 20 minutes on, 25 off.
        let fridge = if (hour * 60.0) % 45.0 < 20.0 {
            110.0
        } else {
            0.0
        };
        let appliances: f64 = self.running.iter().map(|a| a.watts).sum();
        let wobble = 1.0 + 0.06 * noise.gauss().clamp(-3.0, 3.0);
        (rhythm * wobble + fridge + appliances).clamp(80.0, 15000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_sun_at_night_most_at_noon_and_more_in_summer() {
        const JUNE: f64 = 172.0;
        const DECEMBER: f64 = 355.0;
        assert_eq!(clear_sky(3.0, JUNE), 0.0);
        assert_eq!(clear_sky(21.5, JUNE), 0.0);
        assert!(clear_sky(13.0, JUNE) > 0.99);
        assert!(clear_sky(8.0, JUNE) < clear_sky(11.0, JUNE));
        assert_eq!(clear_sky(8.5, DECEMBER), 0.0);
        assert!(clear_sky(13.0, DECEMBER) < 0.55);
        assert!(clear_sky(13.0, DECEMBER) > 0.45);
    }

    #[test]
    fn noise_is_deterministic_and_in_range() {
        let mut a = Noise::new(1);
        let mut b = Noise::new(1);
        for _ in 0..1000 {
            let x = a.uniform();
            assert_eq!(x, b.uniform());
            assert!((0.0..1.0).contains(&x));
        }
    }

    #[test]
    fn household_load_is_positive_and_peaks_in_the_evening() {
        let mut noise = Noise::new(3);
        let mut house = Household::default();
        let mut night = 0.0;
        let mut evening = 0.0;
        for i in 0..600 {
            night += house.step(3.0 + i as f64 / 3600.0, 1.0, &mut noise);
        }
        let mut house = Household::default();
        for i in 0..600 {
            evening += house.step(19.5 + i as f64 / 3600.0, 1.0, &mut noise);
        }
        assert!(night > 0.0);
        assert!(evening > night);
    }
}
