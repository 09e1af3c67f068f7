"""rosbag2 tools on rosbags (no rosbag2_py needed): record and play over rclpy, process a bag's
images with the core Pipeline, evaluate recorded outputs against annotations.

typesys: our message types; bagfile / salvage: reading (damaged files too) and writing;
qos: rosbag2's QoS rules; record, play, process, evaluate (+ annotations): the commands.
"""

#: Storage formats of the bags we write; the first is the default (as in rosbag2 since Iron).
STORAGE_NAMES = ("mcap", "sqlite3")
