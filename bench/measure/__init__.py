"""One model in, one result out: counting (cost rules), timing (sampling engine), statistics,
environment and calibration."""
