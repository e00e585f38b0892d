//! The RDP protocol pieces that need no I/O: the X.224 connection exchange of MS-RDPBCGR
//! ([`x224`]) and what the RDP probes report ([`report`]). Always compiled, so the server and
//! the portal read probe reports with the same types the agent writes them with.

pub mod report;
pub mod x224;
