# Start script of a Windows runner (the launch template's user data; infra/build.py wraps it in
# <powershell> tags). Same rules as start-runner.sh:
# - every wait is bounded; when one runs out, or any step fails, the instance terminates itself;
# - the token parameter is read once, deleted at once, never printed, and handed to the runner
#   in ACTIONS_RUNNER_INPUT_* variables rather than on a command line;
# - an ephemeral runner terminates its instance when its one job is done;
# - EnableUserDataDebugLogging=true-logs-secrets traces every line and so LOGS THE SECRETS.
# Uses the AWS Tools for PowerShell that AWS's Windows AMIs ship.
# @@SETTINGS@@
$ErrorActionPreference = 'Stop'
if (-not $GhrUserDataDebug) { $GhrUserDataDebug = 'false' }
$RunnerDir = 'C:\actions-runner'
$ImdsUrl = 'http://169.254.169.254'
$TokenWaitSeconds = 300

Start-Transcript -Path 'C:\UserData.log' -Append | Out-Null
if ($GhrUserDataDebug -eq 'true-logs-secrets') {
    Write-Output "WARNING: user-data debug logging is on: the runner's registration secret WILL be logged"
    Set-PSDebug -Trace 2  # shows every assignment's value
}

$script:Step = 'start'
$script:InstanceId = $null
$script:Region = $null
$script:AgentMode = ''
$script:Started = $false
$script:EnableCloudwatch = 'false'

function Write-Log([string]$Message) {
    Write-Output ("{0} start-runner [{1}]: {2}" -f (Get-Date).ToUniversalTime().ToString('s'), $script:Step, $Message)
}

# Runs $Action until it returns something, waiting with exponential backoff; throws after $Limit s.
function Wait-For([scriptblock]$Action, [int]$Limit, [string]$What) {
    $waited = 0
    $delay = 1
    while ($true) {
        try { $value = & $Action } catch { $value = $null }
        if ($value) { return $value }
        if ($waited -ge $Limit) { throw "no $What after $waited s" }
        Start-Sleep -Seconds $delay
        $waited += $delay
        $delay = [Math]::Min($delay * 2, 15)
    }
}

function Stop-Self {
    Write-Log "terminating instance $($script:InstanceId)"
    try {
        Remove-EC2Instance -InstanceId $script:InstanceId -Region $script:Region -Force | Out-Null
    } catch {
        # The launch template's shutdown behaviour is terminate.
        shutdown.exe /s /t 0
    }
}

function Get-Imds([string]$Path) {
    Invoke-RestMethod -Uri "$ImdsUrl/latest/$Path" -TimeoutSec 3 -Headers @{ 'X-aws-ec2-metadata-token' = $script:ImdsToken }
}

function Get-InstanceTag([string]$Key) {
    try { return [string](Get-Imds "meta-data/tags/instance/$Key") } catch { }
    $tags = Get-EC2Tag -Region $script:Region -Filter @(
        @{ Name = 'resource-id'; Values = $script:InstanceId }, @{ Name = 'key'; Values = $Key })
    if ($tags) { return [string]$tags[0].Value }
    return ''
}

function Get-Config([string]$Name) {
    (Get-SSMParameter -Region $script:Region -Name "$script:ConfigPath/$Name").Value
}

function Invoke-PreInstall {
    $script:Step = 'pre-install'
# @@PRE_INSTALL@@
}

function Invoke-PostInstall {
    $script:Step = 'post-install'
# @@POST_INSTALL@@
}

# The runner archive must match the SHA-256 published with it: sync_runner_binaries records it on
# the S3 object (metadata runner-sha256), GitHub in the release notes between SHA markers.
function Assert-ArchiveHash([string]$Path, [string]$Expected) {
    $actual = (Get-FileHash -Algorithm SHA256 -Path $Path).Hash.ToLowerInvariant()
    if ($actual -ne $Expected.ToLowerInvariant()) {
        throw "runner archive SHA-256 is $actual, expected $($Expected): not installing it"
    }
    Write-Log 'runner archive SHA-256 verified'
}

function Install-Runner {
    $script:Step = 'install'
    if (Test-Path "$RunnerDir\config.cmd") { Write-Log 'runner already installed (prebuilt image)'; return }
    New-Item -ItemType Directory -Force -Path $RunnerDir | Out-Null
    $archive = "$RunnerDir\actions-runner.zip"
    $expected = $null
    try {
        # "none": the syncer is off (EnableRunnerBinariesSyncer); the bucket holds nothing current.
        if ($script:BinariesUri -eq 'none') { throw 'the runner binaries syncer is off' }
        $uri = [Uri]$script:BinariesUri
        $key = $uri.AbsolutePath.TrimStart('/')
        # Reads the object version whose metadata was just read, even while the syncer replaces it.
        $head = Get-S3ObjectMetadata -Region $script:Region -BucketName $uri.Host -Key $key
        $pinned = @{}
        if ($head.VersionId -and $head.VersionId -ne 'null') { $pinned = @{ VersionId = $head.VersionId } }
        Read-S3Object -Region $script:Region -BucketName $uri.Host -Key $key -File $archive @pinned | Out-Null
        $expected = $head.Metadata['x-amz-meta-runner-sha256']
        if (-not $expected) { Write-Log 'the S3 copy carries no runner-sha256 (written by an older syncer): not verified' }
    } catch {
        Write-Log "runner not taken from the S3 cache ($($script:BinariesUri): $($_.Exception.Message)); downloading from GitHub"
        $release = Invoke-RestMethod -Uri 'https://api.github.com/repos/actions/runner/releases/latest' -TimeoutSec 30
        $version = $release.tag_name.TrimStart('v')
        if ($release.body -notmatch '<!-- BEGIN SHA win-x64 -->([0-9a-f]{64})<!-- END SHA win-x64 -->') {
            throw 'no runner release with a win-x64 SHA-256 found'
        }
        $expected = $Matches[1]
        Invoke-WebRequest -UseBasicParsing -TimeoutSec 600 -OutFile $archive `
            -Uri "https://github.com/actions/runner/releases/download/v$version/actions-runner-win-x64-$version.zip"
    }
    if ($expected) { Assert-ArchiveHash $archive $expected }
    Expand-Archive -Path $archive -DestinationPath $RunnerDir -Force
    Remove-Item $archive
}

function Start-CloudwatchAgent {
    $script:Step = 'cloudwatch'
    if ($script:EnableCloudwatch -ne 'true') { return }
    $ctl = 'C:\Program Files\Amazon\AmazonCloudWatchAgent\amazon-cloudwatch-agent-ctl.ps1'
    if (-not (Test-Path $ctl)) { Write-Log 'no CloudWatch agent on this image; logs stay on the instance'; return }
    try { & $ctl -a fetch-config -m ec2 -s -c "ssm:$script:ConfigPath/cloudwatch_agent_config_runner" }
    catch { Write-Log 'the CloudWatch agent did not start' }
}

# Reads the token parameter (never printed), then deletes it.
function Get-RunnerSecret {
    $script:Step = 'token'
    $name = "$script:TokenPath/$script:InstanceId"
    $secret = Wait-For { (Get-SSMParameter -Region $script:Region -Name $name -WithDecryption $true).Value } $TokenWaitSeconds "runner configuration in $name"
    Write-Log 'runner configuration received'
    try { Remove-SSMParameter -Region $script:Region -Name $name -Force | Out-Null }
    catch { Write-Log "could not delete $name; scale-down removes stale tokens" }
    return $secret
}

function Invoke-Runner([string]$Script, [string[]]$Arguments) {
    Push-Location $RunnerDir
    try {
        & ".\$Script" @Arguments
        if ($LASTEXITCODE -ne 0) { throw "$Script exited with $LASTEXITCODE" }
    } finally { Pop-Location }
}

# Splits the runner configuration as sh splits a line of quoted words (docs/REFERENCE.md section 4;
# scale-up quotes with Python's shlex.quote), by the rules of split_words in start-runner.sh:
# blanks separate words, '...' is literal, "..." is literal but for \\ \" \$ \` and
# \<newline>, an unquoted \ quotes the next character. Nothing is expanded; a character sh would
# expand or read as an operator, unquoted, or an unterminated quote refuses the value. The
# messages never quote it: it holds the registration token.
function Split-ShellWords([string]$Value) {
    $special = [char[]]@('$', '`', ';', '&', '|', '<', '>', '(', ')', '*', '?', '[', "`n")
    $escapable = [char[]]@('$', '`', '"', '\', "`n")
    $words = New-Object System.Collections.Generic.List[string]
    $word = New-Object System.Text.StringBuilder
    $started = $false
    $i = 0
    while ($i -lt $Value.Length) {
        $c = $Value[$i]; $i++
        if ($c -eq [char]' ' -or $c -eq [char]"`t") {
            if ($started) { $words.Add($word.ToString()) }
            [void]$word.Clear(); $started = $false
        } elseif ($c -eq [char]"'") {
            $close = $Value.IndexOf([char]"'", $i)
            if ($close -lt 0) { throw 'the runner configuration has an unterminated quote' }
            [void]$word.Append($Value.Substring($i, $close - $i)); $i = $close + 1; $started = $true
        } elseif ($c -eq [char]'"') {
            $started = $true
            while ($true) {
                if ($i -ge $Value.Length) { throw 'the runner configuration has an unterminated quote' }
                $c = $Value[$i]; $i++
                if ($c -eq [char]'"') { break }
                if ($c -eq [char]'$' -or $c -eq [char]'`') { throw 'the runner configuration asks for an expansion' }
                if ($c -eq [char]'\' -and $i -lt $Value.Length -and $escapable -contains $Value[$i]) {
                    if ($Value[$i] -ne [char]"`n") { [void]$word.Append($Value[$i]) }
                    $i++
                } else { [void]$word.Append($c) }
            }
        } elseif ($c -eq [char]'\') {
            if ($i -ge $Value.Length) { throw 'the runner configuration ends in a backslash' }
            if ($Value[$i] -ne [char]"`n") { [void]$word.Append($Value[$i]); $started = $true }
            $i++
        } elseif ($special -contains $c -or (-not $started -and ($c -eq [char]'~' -or $c -eq [char]'#'))) {
            throw 'the runner configuration is not a line of shell-quoted words'
        } else { [void]$word.Append($c); $started = $true }
    }
    if ($started) { $words.Add($word.ToString()) }
    return $words.ToArray()
}

function Register-Runner([string]$Secret, [string]$Name, [bool]$AsService) {
    $script:Step = 'configure'
    $arguments = @('--unattended', '--name', $Name, '--work', '_work')
    if ($AsService) { $arguments += '--runasservice' }
    $words = @(Split-ShellWords $Secret)
    for ($i = 0; $i -lt $words.Count; $i++) {
        # The token goes to the environment, where other users' process listings cannot see it.
        if ($words[$i] -eq '--token') { $env:ACTIONS_RUNNER_INPUT_TOKEN = $words[$i + 1]; $i++ }
        else { $arguments += $words[$i] }
    }
    try { Invoke-Runner 'config.cmd' $arguments } finally { Remove-Item Env:\ACTIONS_RUNNER_INPUT_TOKEN -ErrorAction SilentlyContinue }
}

$failed = $true
try {
    $script:Step = 'imds'
    $script:ImdsToken = Wait-For {
        Invoke-RestMethod -Method Put -Uri "$ImdsUrl/latest/api/token" -TimeoutSec 3 -Headers @{ 'X-aws-ec2-metadata-token-ttl-seconds' = '21600' }
    } 120 'IMDSv2 token'
    $script:InstanceId = [string](Get-Imds 'meta-data/instance-id')
    $script:Region = [string](Get-Imds 'meta-data/placement/region')
    Write-Log "instance $($script:InstanceId) in $($script:Region)"

    $script:Step = 'config'
    $script:ConfigPath = Get-InstanceTag 'ghr:ssm_config_path'
    if (-not $script:ConfigPath) { throw 'tag ghr:ssm_config_path is missing' }
    $namePrefix = Get-InstanceTag 'ghr:runner_name_prefix'
    $script:AgentMode = Get-Config 'agent_mode'
    $jit = Get-Config 'enable_jit_config'
    $script:EnableCloudwatch = Get-Config 'enable_cloudwatch'
    $script:TokenPath = Get-Config 'token_path'
    $script:BinariesUri = Get-Config 'runner_binaries_s3_uri'
    Write-Log "config $($script:ConfigPath): agent_mode=$($script:AgentMode) jit=$jit"

    Invoke-PreInstall
    Install-Runner
    Invoke-PostInstall
    Start-CloudwatchAgent
    $secret = Get-RunnerSecret

    $script:Step = 'run'
    $runnerName = "$namePrefix$($script:InstanceId)"
    if ($script:AgentMode -eq 'ephemeral') {
        $script:Started = $true
        if ($jit -eq 'true') {
            $env:ACTIONS_RUNNER_INPUT_JITCONFIG = $secret
            $secret = $null
            try { Invoke-Runner 'run.cmd' @() } catch { Write-Log $_.Exception.Message }
        } else {
            Register-Runner $secret $runnerName $false
            $secret = $null
            try { Invoke-Runner 'run.cmd' @() } catch { Write-Log $_.Exception.Message }
        }
        Write-Log 'ephemeral runner finished'
    } else {
        Register-Runner $secret $runnerName $true
        $secret = $null
        Write-Log 'runner service started'
    }
    $failed = $false
} catch {
    Write-Log "start failed: $($_.Exception.Message)"
} finally {
    if ($failed -or ($script:AgentMode -eq 'ephemeral' -and $script:Started)) {
        if ($script:EnableCloudwatch -eq 'true') { Start-Sleep -Seconds 10 }
        Stop-Self
    }
    Stop-Transcript | Out-Null
}
