//! stub
pub struct Fixture;
pub fn fixtures() {}
pub fn write_fixtures() {}
