from typing import Any
GenerateOutput = Any
