//! RDP protocol probes: `rdp-negotiate` and `rdp-tls`.

pub mod hello;
pub mod x224;
