//! The RDP protocol pieces that need no I/O: the X.224 connection exchange of MS-RDPBCGR
//! ([`x224`]), the first CredSSP round trip ([`credssp`], on the DER of [`der`]) with the
//! NTLM messages it carries ([`ntlm`]), and what the RDP probes report ([`report`],
//! [`clock`]). Always compiled, so the server and the portal read probe reports with the
//! same types the agent writes them with.

pub mod clock;
pub mod credssp;
pub mod der;
pub mod ntlm;
pub mod report;
pub mod x224;
