"""The viewer in a live JupyterLab: a real `jupyter lab` server on loopback, Debian's Chromium driven by Playwright, a real kernel
with the ipympl backend. Clicking an object in the figure shows what `Viewer.inspect` says of that voxel; a layer toggle changes
the picture. Needs /usr/bin/chromium (`apt-get install chromium`, done by .ci/run) and the playwright package (dev extra)."""
import os, re, signal, socket, subprocess, sys, time, urllib.request
import nbformat
import pytest
from playwright.sync_api import sync_playwright, expect

CHROMIUM = os.environ.get('CHROMIUM', '/usr/bin/chromium')
FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync']
SPECS = dict(raw='sample:fibsem-gala/train-image.h5:stack', seg='sample:fibsem-gala/train-ws.lzf.h5:stack',
             gt='sample:fibsem-gala/train-gt.lzf.h5:stack')

def free_port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

@pytest.fixture
def lab(tmp_path, data):
    "A JupyterLab server on loopback whose root holds a notebook opening the viewer on gala; yields its notebook URL."
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('%matplotlib widget'), nbformat.v4.new_code_cell(
        "from connecto.viewer import Viewer\n"
        f"Viewer({SPECS['raw']!r}, seg={SPECS['seg']!r}, gt={SPECS['gt']!r}, z=25)")],
        metadata={'kernelspec': {'name': 'python3', 'display_name': 'Python 3 (ipykernel)', 'language': 'python'}})
    nbformat.write(nb, tmp_path/'viewer.ipynb')
    port, token = free_port(), 'connecto-test'
    env = {**os.environ, 'CONNECTO_DATA': str(data), 'JUPYTER_CONFIG_DIR': str(tmp_path/'.jupyter')}
    server = subprocess.Popen([sys.executable, '-m', 'jupyter', 'lab', '--no-browser', f'--port={port}', '--ip=127.0.0.1',
                               f'--IdentityProvider.token={token}', f'--ServerApp.root_dir={tmp_path}', '--LabApp.news_url=None',
                               '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate',
                               '--LabApp.extension_manager=readonly', '--allow-root'],
                              env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path/'lab.log', 'w'), start_new_session=True)
    base = f'http://127.0.0.1:{port}'
    try:
        ready = False
        for _ in range(120):
            if server.poll() is not None: break
            try: urllib.request.urlopen(f'{base}/api/status?token={token}', timeout=1); ready = True; break
            except OSError: time.sleep(0.5)
        if not ready: pytest.fail(f"jupyter lab did not start: {(tmp_path/'lab.log').read_text()[-2000:]}")
        yield f'{base}/lab/tree/viewer.ipynb?token={token}'
    finally:                                                  # the server and its kernels, whatever happened
        os.killpg(server.pid, signal.SIGTERM)
        try: server.wait(30)
        except subprocess.TimeoutExpired: os.killpg(server.pid, signal.SIGKILL); server.wait()

def test_click_in_live_jupyterlab_shows_the_object(lab, tmp_path):
    from connecto.viewer import Viewer
    assert os.path.exists(CHROMIUM), f"{CHROMIUM} is missing: apt-get install chromium (or set CHROMIUM to a Chromium binary)"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={'width': 1400, 'height': 1000})
        page.goto(lab)
        page.locator('.jp-Notebook').wait_for(timeout=60_000)
        expect(page.get_by_text(re.compile(r'Python 3 \(ipykernel\) \| Idle'))).to_be_visible(timeout=60_000)
        page.get_by_role('menuitem', name='Run', exact=True).click()
        page.get_by_text('Run All Cells', exact=True).click()
        canvas = page.locator('.jupyter-matplotlib-canvas-div canvas').last
        canvas.wait_for(timeout=120_000)
        box = canvas.bounding_box()
        canvas.click(position={'x': box['width'] * 0.3, 'y': box['height'] * 0.6})
        info = page.locator('code', has_text='segmentation')
        info.wait_for(timeout=60_000)
        text = info.inner_text()
        page.screenshot(path=str(tmp_path/'viewer.png'))
        before = canvas.screenshot()                         # drawn by now: the click's answer came after the first draw
        page.get_by_role('checkbox', name='segmentation').uncheck()
        time.sleep(3)
        after = canvas.screenshot()
        browser.close()
    m = re.match(r'z (\d+), y (\d+), x (\d+): ', text)
    assert m, text
    z, y, x = map(int, m.groups())
    assert z == 25 and 35 <= y <= 85 and 40 <= x <= 80, text             # a click at 30% across and 60% down a 100 x 200 section
    v = Viewer(SPECS['raw'], seg=SPECS['seg'], gt=SPECS['gt'], z=25)
    assert text == v.describe(v.inspect(z, y, x))
    assert before != after                                               # the segmentation layer was switched off
