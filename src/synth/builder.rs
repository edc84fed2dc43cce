//! Packet and file writers. (Stub: to be implemented.)
