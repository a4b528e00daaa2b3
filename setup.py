"Setup for connecto, read from nbdev 2's settings.ini (nbdev 3 refuses settings.ini: pin nbdev==2.4.14)."
from configparser import ConfigParser
import setuptools

assert int(setuptools.__version__.split('.')[0]) >= 36, 'please upgrade setuptools'
config = ConfigParser(delimiters=['='])
config.read('settings.ini', encoding='utf-8')
cfg = config['DEFAULT']

licenses = {'apache2': ('Apache Software License 2.0', 'OSI Approved :: Apache Software License')}
statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable', '6 - Mature', '7 - Inactive']
lic = licenses[cfg['license']]
min_python = cfg['min_python']
py_versions = ['3.10', '3.11', '3.12', '3.13']

def reqs(key): return cfg.get(key, '').split()

extras = {name[len('extra_'):]: reqs(name) for name in cfg if name.startswith('extra_')}
extras['dev'] = reqs('dev_requirements')
extras['all'] = sorted({r for rs in extras.values() for r in rs})

setuptools.setup(
    name=cfg['lib_name'],
    version=cfg['version'],
    license=lic[0],
    classifiers=['Development Status :: ' + statuses[int(cfg['status'])],
                 'Intended Audience :: ' + cfg['audience'].title(),
                 'License :: ' + lic[1],
                 'Natural Language :: ' + cfg['language'].title(),
                 'Topic :: Scientific/Engineering :: Image Processing'] +
                ['Programming Language :: Python :: ' + v for v in py_versions[py_versions.index(min_python):]],
    url=cfg['git_url'],
    packages=setuptools.find_packages(include=['connecto', 'connecto.*']),
    include_package_data=True,
    package_data={'connecto': ['stages/*.ipynb']},   # the stage notebooks (connecto/stages links to nbs/pipeline)
    install_requires=reqs('requirements'),
    extras_require=extras,
    python_requires='>=' + min_python,
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    zip_safe=False,
    entry_points={'console_scripts': cfg.get('console_scripts', '').split(),
                  'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
    author=cfg['author'], author_email=cfg['author_email'],
    description=cfg['description'], keywords=cfg['keywords'])
