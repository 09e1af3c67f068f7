# Everything a fresh machine needs, idempotently: `make demo`, `make test`.
# Stamps in .venv record finished steps; a step re-runs only when its inputs change.
SHELL := /bin/bash
PYTHON ?= python3
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
ROS_ENV := AMENT_PREFIX_PATH=$(VENV) CMAKE_PREFIX_PATH=$(VENV) PATH=$(VENV)/bin:$$PATH
MSGS := $(wildcard gaze_msgs/msg/*.msg) gaze_msgs/CMakeLists.txt gaze_msgs/package.xml
MTCNN_WEIGHTS := weights/mtcnn/pnet.pt weights/mtcnn/rnet.pt weights/mtcnn/onet.pt
MEDIAPIPE_WEIGHTS := weights/mediapipe/face_landmark.tflite weights/mediapipe/iris_landmark.tflite
PYTEST_ARGS ?=

.PHONY: setup demo test weights ros-tools clean distclean

setup: $(VENV)/.stamp-deps $(VENV)/.stamp-msgs $(VENV)/.stamp-pkg $(MTCNN_WEIGHTS) $(MEDIAPIPE_WEIGHTS)

demo: setup
	$(VENV)/bin/gaze-perception demo

test: setup ros-tools
	$(VENV)/bin/pytest $(PYTEST_ARGS)

weights: $(MTCNN_WEIGHTS) $(MEDIAPIPE_WEIGHTS)

# 1. venv + wheels; then point the ROS wheels' CMake files at this venv (DESIGN.md 6, the quirk).
$(VENV)/.stamp-deps: requirements.txt tools/fix_ros_cmake_paths.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) tools/fix_ros_cmake_paths.py $(VENV)
	touch $@

# 2. gaze_msgs built by colcon and installed into the venv prefix (an ament prefix: share/, lib/).
$(VENV)/.stamp-msgs: $(VENV)/.stamp-deps $(MSGS)
	cd $(CURDIR) && $(ROS_ENV) $(VENV)/bin/colcon --log-base build/log build --merge-install \
	  --install-base $(VENV) --build-base build --base-paths gaze_msgs \
	  --cmake-args -DPython3_EXECUTABLE=$(PY) -DBUILD_TESTING=OFF
	touch $@

# 3. this package, editable (entry points = backend plugins and the gaze-perception command),
#    and in the ament index of the venv prefix as colcon --symlink-install lays it out (launch/,
#    config/, lib/gaze_perception/<node>), so `ros2 launch gaze_perception ...` finds it.
$(VENV)/.stamp-pkg: $(VENV)/.stamp-deps setup.py setup.cfg tools/ros_tools.py
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) tools/ros_tools.py ament-develop
	touch $@

# 4. MTCNN weights from the facenet-pytorch wheel on PyPI, sha256-checked against the manifest.
$(MTCNN_WEIGHTS) &: $(VENV)/.stamp-pkg weights/manifest.yaml
	$(VENV)/bin/gaze-perception weights fetch mtcnn_pnet mtcnn_rnet mtcnn_onet
	touch $(MTCNN_WEIGHTS)

# 5. MediaPipe Face Mesh + Iris TFLite files from the official mediapipe wheel on PyPI (never
#    imported: the files are taken out of the wheel), sha256-checked against the manifest.
$(MEDIAPIPE_WEIGHTS) &: $(VENV)/.stamp-pkg weights/manifest.yaml
	$(VENV)/bin/gaze-perception weights fetch mediapipe_face_mesh mediapipe_iris
	touch $(MEDIAPIPE_WEIGHTS)

# 6. test-time: the real `ros2` command line and launch_ros (../shared/ros_python, pip) and the
#    interface packages composition_interfaces, hri_msgs, tf2_msgs (../shared/ros_interfaces,
#    colcon, a few minutes once), each only where no ROS install provides it. Without ../shared
#    nothing is installed and the tests that use these tools skip with the reason.
SHARED ?= $(CURDIR)/../shared
ros-tools: $(VENV)/.stamp-ros-tools
$(VENV)/.stamp-ros-tools: $(VENV)/.stamp-msgs $(VENV)/.stamp-pkg tools/ros_tools.py
	$(PY) tools/ros_tools.py install --shared $(SHARED)
	if [ -d $(SHARED)/ros_python ]; then touch $@; fi

clean:
	rm -rf build log demo_out .pytest_cache

distclean: clean
	rm -rf $(VENV) weights/mtcnn weights/mediapipe
