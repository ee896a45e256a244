-- Measurements of both feet, their scan objects, and the shoe catalog.
-- Written in the SQL that SQLite and PostgreSQL share.

CREATE TABLE measurements (
    measurement_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    device TEXT NOT NULL,
    measured_at_ms BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

CREATE INDEX measurements_newest_first
    ON measurements (user_id, measured_at_ms DESC, measurement_id DESC);

CREATE TABLE feet (
    measurement_id TEXT NOT NULL REFERENCES measurements (measurement_id) ON DELETE CASCADE,
    side TEXT NOT NULL CHECK (side IN ('left', 'right')),
    length_mm DOUBLE PRECISION NOT NULL,
    width_mm DOUBLE PRECISION NOT NULL,
    ball_girth_mm DOUBLE PRECISION NOT NULL,
    instep_height_mm DOUBLE PRECISION NOT NULL,
    heel_width_mm DOUBLE PRECISION NOT NULL,
    arch_height_mm DOUBLE PRECISION,
    ball_of_foot_length_mm DOUBLE PRECISION,
    toe1_offset_mm DOUBLE PRECISION NOT NULL,
    toe2_offset_mm DOUBLE PRECISION NOT NULL,
    toe3_offset_mm DOUBLE PRECISION NOT NULL,
    toe4_offset_mm DOUBLE PRECISION NOT NULL,
    toe5_offset_mm DOUBLE PRECISION NOT NULL,
    toe1_angle_deg DOUBLE PRECISION NOT NULL,
    toe5_angle_deg DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (measurement_id, side)
);

-- A scan belongs to one measurement: deleting the measurement deletes the scan.
CREATE TABLE scan_objects (
    measurement_id TEXT NOT NULL REFERENCES measurements (measurement_id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    object_key TEXT NOT NULL UNIQUE,
    PRIMARY KEY (measurement_id, position)
);

CREATE TABLE shoes (
    shoe_id TEXT PRIMARY KEY,
    brand TEXT NOT NULL,
    model TEXT NOT NULL,
    category TEXT NOT NULL,
    gender TEXT NOT NULL,
    unit_system TEXT NOT NULL
);

CREATE TABLE shoe_sizes (
    shoe_id TEXT NOT NULL REFERENCES shoes (shoe_id) ON DELETE CASCADE,
    size_mm BIGINT NOT NULL,
    inner_length_mm DOUBLE PRECISION NOT NULL,
    inner_ball_girth_mm DOUBLE PRECISION NOT NULL,
    inner_width_mm DOUBLE PRECISION,
    label_eu TEXT NOT NULL,
    label_uk TEXT NOT NULL,
    label_us TEXT NOT NULL,
    PRIMARY KEY (shoe_id, size_mm)
);
