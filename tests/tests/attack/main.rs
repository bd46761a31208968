//! The attack suite: each hole an outside review found, replayed as the
//! attacker played it, and the classics beside them. One module a theme.
//! Every test here failed before its fix.

mod enrolment;
mod input;
mod lockout;
mod proofs;
mod resources;
mod sessions;
