# escape=`
FROM mcr.microsoft.com/windows/servercore
COPY testfile.txt c:\
RUN dir c:\ `
    /b
ENV PATHS="C:\one;C:\two" MORE=x`
    Y=z
